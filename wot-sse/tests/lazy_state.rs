//! The state shared with handles is made on first use: a handle or state watcher created late
//! must see the current state, and a handle made after the stream parked must still wake it.

// The HTTP client is the `client` feature; without it only the parser tests run.
#![cfg(feature = "client")]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use wot_sse::{
    CloseReason, ConnectionState, EventStream, ReconnectPolicy, SseClient, StreamHandle,
};

/// A server that answers `head` and `body` to every request, and then keeps the connection
/// open without sending more.
async fn server(head: &'static str, body: &'static str) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut open = Vec::new();
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            socket.write_all(head.as_bytes()).await.unwrap();
            socket.write_all(body.as_bytes()).await.unwrap();
            open.push(socket);
        }
    });
    (url, task)
}

const SSE_HEAD: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                        transfer-encoding: chunked\r\n\r\n";

/// Polls the stream, and on its first `Pending` makes a handle and sends it away, returning
/// `Pending` without polling the stream again.
struct HandleAfterPending {
    stream: EventStream,
    send: Option<oneshot::Sender<StreamHandle>>,
}

impl Future for HandleAfterPending {
    type Output = Option<Result<wot_sse::Event, wot_sse::Error>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let polled = self.stream.poll_next_unpin(cx);
        if polled.is_pending()
            && let Some(send) = self.send.take()
        {
            let _ = send.send(self.stream.handle());
        }
        polled
    }
}

/// A URL where every connection attempt is refused at once.
async fn refusing_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    drop(listener);
    url
}

#[tokio::test]
async fn a_handle_made_after_the_stream_parked_still_wakes_it() {
    // After a refused attempt the stream waits an hour to reconnect: while it waits, only the
    // handle can wake the task.
    let policy = ReconnectPolicy::new()
        .initial_delay(Duration::from_secs(3600))
        .jitter(0.0);
    let mut stream = SseClient::new()
        .get(refusing_url().await)
        .reconnect(policy)
        .connect()
        .unwrap();
    assert!(stream.next().await.unwrap().is_err());
    let (send, receive) = oneshot::channel::<StreamHandle>();
    let closer = tokio::spawn(async move {
        let handle = receive.await.unwrap();
        handle.close();
        handle
    });
    let waiting = HandleAfterPending {
        stream,
        send: Some(send),
    };
    // A guard against a hang, not a timing assumption: the close wakes the task at once. The
    // guard goes first, so its own wake-up cannot poll the stream to its end.
    let end = tokio::select! {
        biased;
        () = tokio::time::sleep(Duration::from_secs(20)) => panic!("the close did not wake the task"),
        end = waiting => end,
    };
    assert!(end.is_none(), "{end:?}");
    let handle = closer.await.unwrap();
    assert_eq!(
        *handle.state().borrow(),
        ConnectionState::Closed {
            reason: CloseReason::Requested
        }
    );
}

#[tokio::test]
async fn state_asked_for_late_starts_from_the_current_state() {
    let (url, _server) = server(SSE_HEAD, "b\r\ndata: one\n\n\r\n").await;
    let mut stream = SseClient::new().get(&url).connect().unwrap();
    assert_eq!(*stream.state().borrow(), ConnectionState::Connecting);

    let mut stream2 = SseClient::new().get(&url).connect().unwrap();
    let first = stream2.next().await.unwrap().unwrap();
    assert_eq!(first.data(), "one");
    // The first call after the stream opened: the watcher starts at `Open`.
    let state = stream2.state();
    assert_eq!(*state.borrow(), ConnectionState::Open);
    assert!(format!("{stream2:?}").contains("Open"), "{stream2:?}");
    stream2.close();
    assert!(stream2.next().await.is_none());
    assert_eq!(
        *state.borrow(),
        ConnectionState::Closed {
            reason: CloseReason::Requested
        }
    );

    // The watcher made before the first poll follows the stream as well.
    let watcher = stream.state();
    assert_eq!(stream.next().await.unwrap().unwrap().data(), "one");
    assert_eq!(*watcher.borrow(), ConnectionState::Open);
    drop(stream);
    assert_eq!(
        *watcher.borrow(),
        ConnectionState::Closed {
            reason: CloseReason::Requested
        }
    );
}

#[tokio::test]
async fn a_handle_made_while_waiting_to_reconnect_sees_the_attempt_and_delay() {
    let url = refusing_url().await;
    let policy = ReconnectPolicy::new()
        .initial_delay(Duration::from_secs(3))
        .jitter(0.0);
    let mut stream = SseClient::new()
        .get(&url)
        .reconnect(policy)
        .connect()
        .unwrap();
    let error = stream.next().await.unwrap().unwrap_err();
    assert!(!error.is_terminal(), "{error}");
    let handle = stream.handle();
    assert_eq!(
        *handle.state().borrow(),
        ConnectionState::Reconnecting {
            attempt: 1,
            delay: Duration::from_secs(3)
        }
    );
    // The handle controls the waiting stream: reconnect now, then close.
    handle.reconnect_now();
    let again = stream.next().await.unwrap().unwrap_err();
    assert!(!again.is_terminal(), "{again}");
    assert_eq!(
        *handle.state().borrow(),
        ConnectionState::Reconnecting {
            attempt: 2,
            delay: Duration::from_millis(4500)
        }
    );
    handle.close();
    assert!(stream.next().await.is_none());
}
