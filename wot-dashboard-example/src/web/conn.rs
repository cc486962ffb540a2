//! The connections the web server accepts: at most
//! [`WebLimits::connections`](super::WebLimits::connections) at once (more wait in the
//! listen queue until one closes), each closed after
//! [`WebLimits::idle`](super::WebLimits::idle) without a byte read or written.
//!
//! The HTTP server itself has no such limits: without them a client could open connections
//! until the process runs out of file descriptors, or keep one forever by sending a request
//! head one byte at a time, or by never reading what it asked for. A live stream is never
//! idle (it writes a keep-alive comment every 15 s), so the idle time only ends
//! connections that have nothing to do or a peer that does not read.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// A listener that hands out at most a number of connections at once, each wrapped in
/// [`Idle`].
#[derive(Debug)]
pub(crate) struct Limited {
    listener: TcpListener,
    places: Arc<Semaphore>,
    idle: Duration,
}

impl Limited {
    /// At most `max` connections (at least 1) from `listener`, each closed after `idle`.
    pub(crate) fn new(listener: TcpListener, max: usize, idle: Duration) -> Self {
        Limited {
            listener,
            places: Arc::new(Semaphore::new(max.max(1))),
            idle,
        }
    }
}

impl axum::serve::Listener for Limited {
    type Io = Idle<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // The semaphore is never closed: a place always comes.
        let place = self.places.clone().acquire_owned().await.ok();
        let (stream, addr) = axum::serve::Listener::accept(&mut self.listener).await;
        (Idle::new(stream, self.idle, place), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// A connection that fails with [`io::ErrorKind::TimedOut`] once nothing has been read or
/// written for its idle time while the server waits on it. Holds its place among the
/// allowed connections until dropped.
#[derive(Debug)]
pub(crate) struct Idle<T> {
    io: T,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    _place: Option<OwnedSemaphorePermit>,
}

impl<T> Idle<T> {
    /// `io`, closed after `idle` without progress, holding `place`.
    pub(crate) fn new(io: T, idle: Duration, place: Option<OwnedSemaphorePermit>) -> Self {
        Idle {
            io,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
            _place: place,
        }
    }

    /// Something moved: the idle time starts again.
    fn progressed(&mut self) {
        let next = Instant::now() + self.idle;
        self.deadline.as_mut().reset(next);
    }

    /// The wait goes on, unless the idle time has run out.
    fn waiting<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        ready!(self.deadline.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the connection was idle too long",
        )))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Idle<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => this.waiting(cx),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Idle<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Ready(result) => {
                this.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => this.waiting(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => {
                this.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => this.waiting(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Ready(result) => Poll::Ready(result),
            Poll::Pending => this.waiting(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_shutdown(cx) {
            Poll::Ready(result) => Poll::Ready(result),
            Poll::Pending => this.waiting(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const IDLE: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn a_quiet_peer_is_cut_after_the_idle_time_and_each_byte_starts_it_again() {
        let (near, mut far) = tokio::io::duplex(1024);
        let mut conn = Idle::new(near, IDLE, None);
        let mut buf = [0u8; 16];
        tokio::time::advance(Duration::from_secs(59)).await;
        far.write_all(b"G").await.expect("write");
        assert_eq!(conn.read(&mut buf).await.expect("a byte"), 1);
        let started = Instant::now();
        let error = conn.read(&mut buf).await.expect_err("idle");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_does_not_read_is_cut_too() {
        let (near, _far) = tokio::io::duplex(64);
        let mut conn = Idle::new(near, IDLE, None);
        let started = Instant::now();
        let error = conn.write_all(&[b'x'; 1000]).await.expect_err("idle");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_connection_is_never_cut() {
        let (near, mut far) = tokio::io::duplex(1024);
        let mut conn = Idle::new(near, IDLE, None);
        let mut buf = [0u8; 16];
        for _ in 0..10 {
            tokio::time::advance(Duration::from_secs(50)).await;
            far.write_all(b"k").await.expect("write");
            assert_eq!(conn.read(&mut buf).await.expect("a byte"), 1);
            conn.write_all(b": keep-alive\n\n").await.expect("write");
        }
        assert_eq!(far.read(&mut buf).await.expect("read"), 16);
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_wait_for_a_place() {
        use axum::serve::Listener;

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let mut limited = Limited::new(listener, 2, IDLE);
        let _one = TcpStream::connect(addr).await.expect("connect");
        let _two = TcpStream::connect(addr).await.expect("connect");
        let (first, _) = limited.accept().await;
        let (_second, _) = limited.accept().await;
        let _three = TcpStream::connect(addr).await.expect("connect");
        let mut third = Box::pin(limited.accept());
        assert!(futures::poll!(third.as_mut()).is_pending());
        drop(first);
        let (_third, _) = third.await;
    }
}
