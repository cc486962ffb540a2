//! Hostile servers: each test serves one kind of bad input from a raw TCP server on 127.0.0.1
//! and checks that the client gives a clear error or a bounded result, never a panic, a hang or
//! unbounded memory. Time-dependent cases run on tokio's paused clock.

// The HTTP client is the `client` feature; without it only the parser tests run.
#![cfg(feature = "client")]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, sleep, timeout};
use wot_sse::{ConnectionState, Error, Event, EventStream, Message, ReconnectPolicy, SseClient};
use wot_testkit::{AbortOnDrop, read_request_head, serve_connections};

/// One step of a scripted response.
#[derive(Clone)]
enum Step {
    Send(Vec<u8>),
    /// Send these bytes this many times.
    Repeat(Vec<u8>, usize),
    Sleep(Duration),
    /// Keep the connection open until the client closes it.
    Hold,
}

fn send(bytes: impl AsRef<[u8]>) -> Step {
    Step::Send(bytes.as_ref().to_vec())
}

/// `200 OK` for an event stream whose body lasts until the connection closes.
fn stream_head() -> Step {
    send("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
}

struct Server {
    addr: SocketAddr,
    /// The head of every request, in order.
    requests: Arc<Mutex<Vec<String>>>,
    _task: AbortOnDrop,
}

impl Server {
    fn url(&self) -> String {
        format!("http://{}/events", self.addr)
    }

    fn request_count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

/// A server that answers connection `n` (from 0) with `script(n)`.
async fn serve(script: impl Fn(usize) -> Vec<Step> + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let log = requests.clone();
    let task = serve_connections(listener, move |index, socket| {
        let (requests, steps) = (log.clone(), script(index));
        async move { run_script(socket, steps, &requests).await }
    });
    Server {
        addr,
        requests,
        _task: task,
    }
}

async fn run_script(mut socket: TcpStream, steps: Vec<Step>, requests: &Mutex<Vec<String>>) {
    let Some(head) = read_request_head(&mut socket).await else {
        return;
    };
    requests.lock().unwrap().push(head.into_string());
    let mut buf = [0u8; 1024];
    for step in steps {
        let written = match step {
            Step::Send(bytes) => socket.write_all(&bytes).await,
            Step::Repeat(bytes, times) => {
                let mut result = Ok(());
                for _ in 0..times {
                    result = socket.write_all(&bytes).await;
                    if result.is_err() {
                        break;
                    }
                }
                result
            }
            Step::Sleep(delay) => {
                sleep(delay).await;
                Ok(())
            }
            Step::Hold => {
                while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
                Ok(())
            }
        };
        if written.is_err() {
            return;
        }
    }
    let _ = socket.shutdown().await;
}

fn client() -> wot_sse::SseClientBuilder {
    SseClient::builder().reconnect(
        ReconnectPolicy::new()
            .initial_delay(Duration::from_secs(1))
            .seed(3),
    )
}

fn connect(client: wot_sse::SseClientBuilder, server: &Server) -> EventStream {
    client.build().unwrap().get(server.url()).connect().unwrap()
}

/// The next item within a minute (of paused or real time).
async fn next(stream: &mut EventStream) -> Option<Result<Event, Error>> {
    timeout(Duration::from_secs(60), stream.next())
        .await
        .expect("no item within a minute")
}

const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn an_endless_line_is_cut_at_the_event_limit_and_the_stream_goes_on() {
    let server = serve(|_| {
        vec![
            stream_head(),
            send("data: "),
            // 8 MiB without a line end, against a 1 MiB limit.
            Step::Repeat(vec![b'x'; 64 * 1024], 128),
            send("\n\ndata: after\n\n"),
            Step::Hold,
        ]
    })
    .await;
    let mut stream = connect(client().max_event_size(MIB), &server);

    let error = next(&mut stream).await.unwrap().unwrap_err();
    assert!(
        error.is_event_too_large() && !error.is_terminal(),
        "{error}"
    );
    assert!(error.to_string().contains(&MIB.to_string()), "{error}");
    let event = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(event.data(), "after");
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn an_endless_event_of_many_data_lines_is_dropped_at_the_limit() {
    let server = serve(|_| {
        vec![
            stream_head(),
            // About 4.5 MiB of data lines in one block, against a 1 MiB limit.
            Step::Repeat(b"data: 0123456789\n".to_vec(), 280_000),
            send("\ndata: after\n\n"),
            Step::Hold,
        ]
    })
    .await;
    let mut stream = connect(client().max_event_size(MIB), &server);

    let error = next(&mut stream).await.unwrap().unwrap_err();
    assert!(error.is_event_too_large(), "{error}");
    let event = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(event.data(), "after");
}

#[tokio::test(start_paused = true)]
async fn a_one_byte_per_second_trickle_is_slow_but_not_dead() {
    let event = b"data: slow\n\n";
    let server = serve(move |_| {
        let mut steps = vec![stream_head()];
        for byte in event {
            steps.push(Step::Sleep(Duration::from_secs(1)));
            steps.push(send([*byte]));
        }
        steps.push(Step::Hold);
        steps
    })
    .await;
    let mut stream = connect(client(), &server);
    let started = Instant::now();

    let event = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(event.data(), "slow");
    assert!(started.elapsed() >= Duration::from_secs(12));
    assert_eq!(
        server.request_count(),
        1,
        "a trickle within the idle timeout is alive"
    );
}

#[tokio::test(start_paused = true)]
async fn a_trickle_slower_than_the_idle_timeout_is_a_timeout_and_a_reconnect() {
    let server = serve(|n| match n {
        0 => vec![
            stream_head(),
            send("da"),
            Step::Sleep(Duration::from_secs(60)),
            send("ta: late\n\n"),
            Step::Hold,
        ],
        _ => vec![stream_head(), send("data: fresh\n\n"), Step::Hold],
    })
    .await;
    let mut stream = connect(client().idle_timeout(Duration::from_secs(45)), &server);

    let error = next(&mut stream).await.unwrap().unwrap_err();
    assert!(error.is_timeout() && !error.is_terminal(), "{error}");
    let event = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(
        event.data(),
        "fresh",
        "the half line of the dead connection is dropped"
    );
    assert_eq!(server.request_count(), 2);
}

#[tokio::test]
async fn a_comment_flood_is_passed_through_one_by_one_and_never_piles_up() {
    const COMMENTS: usize = 100_000;
    let server = serve(|_| {
        vec![
            stream_head(),
            Step::Repeat(b":heartbeat\n".to_vec(), COMMENTS),
            send("data: after\n\n"),
            Step::Hold,
        ]
    })
    .await;

    let mut stream = connect(client(), &server);
    let event = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(event.data(), "after", "events skip comments");

    let mut stream = connect(client(), &server);
    let mut comments = 0;
    let mut messages = stream.messages();
    loop {
        match timeout(Duration::from_secs(60), messages.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Comment(text))) => {
                assert_eq!(text, "heartbeat");
                comments += 1;
            }
            Some(Ok(Message::Event(event))) => {
                assert_eq!(event.data(), "after");
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(comments, COMMENTS);
}

#[tokio::test]
async fn one_endless_comment_hits_the_limit_too() {
    let server = serve(|_| {
        vec![
            stream_head(),
            send(":"),
            Step::Repeat(vec![b'c'; 64 * 1024], 64),
            // A comment is no part of an event: only the over-long line is dropped.
            send("\ndata: next\n\n"),
            Step::Hold,
        ]
    })
    .await;
    // The comment limit (64 KiB by default) cuts it long before the event limit.
    let mut stream = connect(client().max_event_size(MIB), &server);
    let error = next(&mut stream).await.unwrap().unwrap_err();
    assert!(error.is_field_too_long() && !error.is_terminal(), "{error}");
    assert_eq!(
        error.field_error(),
        Some(&wot_sse::parser::ParseError::CommentTooLong {
            limit: wot_sse::parser::DEFAULT_MAX_COMMENT_LEN
        })
    );
    assert_eq!(next(&mut stream).await.unwrap().unwrap().data(), "next");
}

#[tokio::test]
async fn invalid_utf8_becomes_replacement_characters_and_ids_still_resume() {
    let server = serve(|n| match n {
        0 => vec![
            stream_head(),
            send(b"data: a\xFFb\xC3\n\nid: \xFE7\ndata: z\n\n"),
        ],
        _ => vec![stream_head(), send("data: resumed\n\n"), Step::Hold],
    })
    .await;
    let mut stream = connect(client(), &server);

    let first = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(first.data(), "a\u{FFFD}b\u{FFFD}");
    let second = next(&mut stream).await.unwrap().unwrap();
    assert_eq!((second.data(), second.id()), ("z", "\u{FFFD}7"));
    let third = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(third.data(), "resumed");
    let requests = server.requests.lock().unwrap().clone();
    assert!(
        requests[1]
            .to_ascii_lowercase()
            .contains("last-event-id: \u{FFFD}7"),
        "{}",
        requests[1]
    );
}

#[tokio::test(start_paused = true)]
async fn thousands_of_huge_retry_fields_cost_nothing_and_the_stream_can_still_be_closed() {
    let server = serve(|_| {
        vec![
            stream_head(),
            Step::Repeat(
                b"retry: 99999999999999999999999999999999\n".to_vec(),
                10_000,
            ),
            send("retry: 18446744073709551616\ndata: x\n\n"),
        ]
    })
    .await;
    let mut stream = connect(client(), &server);
    let state = stream.state();

    assert_eq!(next(&mut stream).await.unwrap().unwrap().data(), "x");
    // The body ends. Whether the client honours the saturated value or caps it, it must not
    // reconnect in a hot loop: within a minute of paused time at most one more attempt.
    let _ = timeout(Duration::from_secs(60), stream.next()).await;
    assert!(
        server.request_count() <= 2,
        "{} requests",
        server.request_count()
    );
    if let ConnectionState::Reconnecting { delay, .. } = &*state.borrow() {
        assert!(*delay >= Duration::from_secs(1), "{delay:?}");
    }
    // Closing works at once, whatever the wait.
    stream.close();
    assert!(next(&mut stream).await.is_none());
}

#[tokio::test]
async fn a_redirect_loop_stops_at_the_limit_with_a_terminal_error() {
    let server = serve(|_| {
        vec![send(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: /loop\r\ncontent-length: 0\r\n\
             connection: close\r\n\r\n",
        )]
    })
    .await;

    let mut stream = connect(client().max_redirects(3), &server);
    let error = next(&mut stream).await.unwrap().unwrap_err();
    assert!(error.is_redirect() && error.is_terminal(), "{error}");
    assert!(next(&mut stream).await.is_none());
    assert_eq!(
        server.request_count(),
        4,
        "the first request and three redirects"
    );

    let mut stream = connect(client(), &server);
    let error = next(&mut stream).await.unwrap().unwrap_err();
    assert!(error.is_redirect(), "{error}");
    assert_eq!(
        server.request_count(),
        4 + 1 + wot_sse::DEFAULT_MAX_REDIRECTS,
        "the default limit"
    );
}

#[tokio::test]
async fn a_wrong_content_type_is_terminal_and_not_retried() {
    for content_type in ["content-type: text/html\r\n", ""] {
        let head = format!("HTTP/1.1 200 OK\r\n{content_type}connection: close\r\n\r\n");
        let server = serve(move |_| vec![send(&head), send("data: not sse\n\n")]).await;
        let mut stream = connect(client(), &server);
        let error = next(&mut stream).await.unwrap().unwrap_err();
        assert!(error.is_content_type() && error.is_terminal(), "{error}");
        assert!(next(&mut stream).await.is_none());
        assert_eq!(server.request_count(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn a_ten_gigabyte_content_length_lie_is_a_broken_body_and_a_reconnect() {
    let server = serve(|n| match n {
        0 => vec![
            send(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                 content-length: 10737418240\r\n\r\n",
            ),
            send("id: 1\ndata: one\n\n"),
        ],
        _ => vec![send("HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")],
    })
    .await;
    let mut stream = connect(client(), &server);

    assert_eq!(next(&mut stream).await.unwrap().unwrap().data(), "one");
    let error = next(&mut stream).await.unwrap().unwrap_err();
    assert!(error.is_body() && !error.is_terminal(), "{error}");
    // The reconnect resumes; the server's 204 then ends the stream cleanly.
    assert!(next(&mut stream).await.is_none());
    let requests = server.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    assert!(
        requests[1]
            .to_ascii_lowercase()
            .contains("last-event-id: 1")
    );
}
