//! A TCP proxy that applies one fault per connection.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::{Instant, sleep};

use crate::AbortOnDrop;
use crate::head::read_request_head;

/// What the [`Proxy`] does to one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything.
    Pass,
    /// Forward the response up to the end of the first occurrence of these bytes, then close
    /// both sides.
    CutAfter(String),
    /// Forward the response up to the end of these bytes, then forward nothing more but keep
    /// the sockets open until the client closes its side.
    StallAfter(String),
    /// Hold every chunk from the server this long before forwarding it.
    Delay(Duration),
    /// Read the request and answer this status (with this `Retry-After` value) without asking
    /// the server, then close.
    Status(u16, Option<String>),
    /// Read the request, answer nothing, keep the socket open until the client closes it.
    Silent,
    /// Close this connection at once and refuse every connection for this long (the listening
    /// socket is closed, so connects fail with "connection refused").
    Refuse(Duration),
}

/// The proxy, on 127.0.0.1. Connection `i` (from 0, in accept order) gets fault `script[i]`;
/// connections past the script pass. Dropping the proxy closes every connection through it.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    accepted: Arc<Mutex<Vec<(Instant, Fault)>>>,
    _task: AbortOnDrop,
}

impl Proxy {
    /// Starts a proxy to `upstream`.
    ///
    /// # Errors
    ///
    /// When no port on 127.0.0.1 can be bound.
    pub async fn start(upstream: SocketAddr, script: Vec<Fault>) -> io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let task = {
            let accepted = accepted.clone();
            tokio::spawn(accept_loop(listener, upstream, script, accepted))
        };
        Ok(Proxy {
            addr,
            accepted,
            _task: AbortOnDrop(task),
        })
    }

    /// The proxy's address: point clients here.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// When each connection was accepted, with the fault applied to it, in order.
    pub fn accepted(&self) -> Vec<(Instant, Fault)> {
        self.accepted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How long the client waited after the first connection that got `fault` before it
    /// connected again (`None`: no such connection, or none after it).
    pub fn wait_after(&self, fault: &Fault) -> Option<Duration> {
        let accepted = self.accepted();
        let at = accepted.iter().position(|(_, f)| f == fault)?;
        let next = accepted.get(at + 1)?;
        Some(next.0 - accepted[at].0)
    }
}

async fn accept_loop(
    mut listener: TcpListener,
    upstream: SocketAddr,
    script: Vec<Fault>,
    accepted: Arc<Mutex<Vec<(Instant, Fault)>>>,
) {
    let Ok(addr) = listener.local_addr() else {
        return;
    };
    let mut conns = Vec::new();
    for index in 0.. {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let fault = script.get(index).cloned().unwrap_or(Fault::Pass);
        accepted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((Instant::now(), fault.clone()));
        if let Fault::Refuse(period) = fault {
            drop(client);
            drop(listener);
            sleep(period).await;
            listener = match rebind(addr) {
                Ok(listener) => listener,
                // The port was taken meanwhile: the test sees refused connections from now on.
                Err(_) => return,
            };
            continue;
        }
        conns.retain(|c: &AbortOnDrop| !c.0.is_finished());
        conns.push(AbortOnDrop(tokio::spawn(relay(client, upstream, fault))));
    }
}

/// Listens again on the same address after a refusal period.
fn rebind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(64)
}

async fn relay(mut client: TcpStream, upstream: SocketAddr, fault: Fault) {
    match fault {
        Fault::Status(code, retry_after) => {
            if read_request_head(&mut client).await.is_none() {
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
            let _ = read_request_head(&mut client).await;
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
        let Some(chunk) = buf.get(..n) else {
            return;
        };
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
        let forward = chunk.get(..limit.unwrap_or(n)).unwrap_or(chunk);
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
        .windows(pattern.len().max(1))
        .position(|w| w == pattern)
        .map(|start| start + pattern.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_gives_the_end_of_the_first_match() {
        assert_eq!(find(b"abcabc", b"bc"), Some(3));
        assert_eq!(find(b"abc", b"x"), None);
        assert_eq!(find(b"ab", b"abc"), None);
    }
}
