//! Why a connection attempt failed, told apart with real sockets on 127.0.0.1: nothing
//! listening, a name that does not resolve, a server that hangs up, TLS to a plain server.

#![cfg(feature = "client")]

use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wot_sse::{ConnectFailure, Error, ReconnectPolicy, SseClient};

/// The first error of a stream from `url` (the first failed attempt).
async fn first_error(url: &str) -> Error {
    let mut stream = SseClient::new()
        .get(url)
        .reconnect(ReconnectPolicy::new().max_attempts(Some(2)))
        .connect()
        .expect("the request is valid");
    match tokio::time::timeout(Duration::from_secs(20), stream.next()).await {
        Ok(Some(Err(error))) => error,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// A port on 127.0.0.1 that nobody listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn nothing_listening_says_connection_refused() {
    let url = format!("http://127.0.0.1:{}/events", closed_port());
    let error = first_error(&url).await;
    assert!(error.is_connect(), "{error}");
    assert_eq!(error.connect_failure(), Some(ConnectFailure::Refused));
    assert_eq!(
        error.to_string(),
        format!("connecting failed: connection refused ({url})")
    );
}

#[tokio::test]
async fn a_name_that_does_not_resolve_says_so() {
    // `.invalid` never resolves (RFC 2606).
    let error = first_error("http://no-such-host.invalid/events").await;
    assert_eq!(
        error.connect_failure(),
        Some(ConnectFailure::Dns),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("could not resolve host"),
        "{error}"
    );
}

#[tokio::test]
async fn a_server_that_hangs_up_before_answering_closed_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            drop(socket);
        }
    });
    let error = first_error(&format!("http://{addr}/events")).await;
    assert_eq!(
        error.connect_failure(),
        Some(ConnectFailure::Closed),
        "{error:?}"
    );
}

#[tokio::test]
async fn https_to_a_plain_http_server_is_a_tls_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let error = first_error(&format!("https://{addr}/events")).await;
    assert_eq!(
        error.connect_failure(),
        Some(ConnectFailure::Tls),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("TLS handshake failed"),
        "{error}"
    );
}

#[tokio::test]
async fn giving_up_keeps_the_last_attempts_failure() {
    let url = format!("http://127.0.0.1:{}/events", closed_port());
    let mut stream = SseClient::new()
        .get(&url)
        .reconnect(
            ReconnectPolicy::new()
                .initial_delay(Duration::ZERO)
                .max_attempts(Some(2)),
        )
        .connect()
        .unwrap();
    let mut last = None;
    while let Some(item) = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("the stream ends")
    {
        last = item.err();
    }
    let last = last.expect("a final error");
    assert!(last.is_retries_exhausted(), "{last}");
    assert_eq!(last.connect_failure(), Some(ConnectFailure::Refused));
}
