//! An SSE server whose feeds number their events and may replay after `Last-Event-ID`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::sleep;

use crate::head::read_request_head;
use crate::{AbortOnDrop, serve_connections};

/// The response head of a feed: a chunked stream, as real servers send it.
const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";

/// The answer to a path no feed serves.
const NOT_FOUND: &[u8] =
    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// Where a feed starts a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// After the `Last-Event-ID` the client sends (from event 1 without one).
    FromLastEventId,
    /// A live feed: the next event is whatever comes next, whoever missed the last ones.
    Live,
}

type TextFn = Arc<dyn Fn(u64) -> String + Send + Sync>;

/// One event stream of an [`Origin`], at one path.
///
/// Event `n` (from 1 to `total`) is sent as `id: n`, then `event: <type>` when a type is set,
/// then one `data:` line per line of `data(n)`, then a blank line. One feed can carry several
/// event types ([`Feed::event_types`]), as a Thing-level WoT Profile SSE stream does.
#[derive(Clone)]
#[must_use]
pub struct Feed {
    path: String,
    total: u64,
    event_type: Option<TextFn>,
    data: TextFn,
    replay: Replay,
    interval: Duration,
}

impl fmt::Debug for Feed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Feed")
            .field("path", &self.path)
            .field("total", &self.total)
            .field("event_type", &self.event_type.as_ref().map(|f| f(1)))
            .field("replay", &self.replay)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl Feed {
    /// A feed at `path` (matched without query string) with events 1 to `total`.
    ///
    /// Defaults: no `event:` field, data `{"seq":n}`, [`Replay::FromLastEventId`], 10 ms
    /// between events.
    pub fn new(path: impl Into<String>, total: u64) -> Self {
        Feed {
            path: path.into(),
            total,
            event_type: None,
            data: Arc::new(|n| format!("{{\"seq\":{n}}}")),
            replay: Replay::FromLastEventId,
            interval: Duration::from_millis(10),
        }
    }

    /// Sends `event: <event_type>` with every event (default: no `event` field).
    pub fn event_type(self, event_type: impl Into<String>) -> Self {
        let event_type = event_type.into();
        self.event_types(move |_| event_type.clone())
    }

    /// Sends `event: <event_type(n)>` with event `n` (default: no `event` field).
    pub fn event_types(
        mut self,
        event_type: impl Fn(u64) -> String + Send + Sync + 'static,
    ) -> Self {
        self.event_type = Some(Arc::new(event_type));
        self
    }

    /// The data of event `n`; each `\n` in it starts another `data:` line (default
    /// `{"seq":n}`).
    pub fn data(mut self, data: impl Fn(u64) -> String + Send + Sync + 'static) -> Self {
        self.data = Arc::new(data);
        self
    }

    /// Whether responses replay after `Last-Event-ID` (default [`Replay::FromLastEventId`]).
    pub fn replay(mut self, replay: Replay) -> Self {
        self.replay = replay;
        self
    }

    /// The wait after each event (default 10 ms).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The wire text of event `n` (without transfer encoding).
    pub fn event_text(&self, n: u64) -> String {
        let mut text = format!("id: {n}\n");
        if let Some(event_type) = &self.event_type {
            text.push_str(&format!("event: {}\n", event_type(n)));
        }
        for line in (self.data)(n).split('\n') {
            text.push_str(&format!("data: {line}\n"));
        }
        text.push('\n');
        text
    }
}

/// One request that reached the [`Origin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginRequest {
    /// The request path, without query string.
    pub path: String,
    /// The `Last-Event-ID` header, if any.
    pub last_event_id: Option<String>,
}

/// A feed with the shared position of its live stream.
struct Served {
    feed: Feed,
    /// The next event a live response starts with: one past the last event sent anywhere.
    next_live: AtomicU64,
}

/// The SSE server, on 127.0.0.1. Dropping it stops it and closes its connections.
#[derive(Debug)]
pub struct Origin {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<OriginRequest>>>,
    _task: AbortOnDrop,
}

impl Origin {
    /// Starts a server for these feeds; other paths answer 404.
    ///
    /// A response sends the feed's events from its start point to `total`, then keeps the
    /// connection open (and silent) until the client closes it.
    ///
    /// # Errors
    ///
    /// When no port on 127.0.0.1 can be bound.
    pub async fn start(feeds: impl IntoIterator<Item = Feed>) -> io::Result<Origin> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let feeds: Arc<Vec<Served>> = Arc::new(
            feeds
                .into_iter()
                .map(|feed| Served {
                    feed,
                    next_live: AtomicU64::new(1),
                })
                .collect(),
        );
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let task = serve_connections(listener, move |_, socket| {
            let (feeds, requests) = (feeds.clone(), log.clone());
            async move { serve(socket, &feeds, &requests).await }
        });
        Ok(Origin {
            addr,
            requests,
            _task: task,
        })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request that reached the server, in order.
    pub fn requests(&self) -> Vec<OriginRequest> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The `Last-Event-ID` of every request for `path`, in order.
    pub fn last_event_ids(&self, path: &str) -> Vec<Option<String>> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .map(|r| r.last_event_id)
            .collect()
    }

    /// Where each reconnect to `path` asked to resume: the numeric `Last-Event-ID` of every
    /// request after the first, in order.
    ///
    /// # Panics
    ///
    /// If the first request sent a `Last-Event-ID`, or a later one sent none or a value that
    /// is not a number: each is a failed check in the tests that call this.
    pub fn resumed_from(&self, path: &str) -> Vec<u64> {
        let asked = self.last_event_ids(path);
        assert_eq!(asked.first(), Some(&None), "first request: {asked:?}");
        asked
            .iter()
            .skip(1)
            .map(|id| match id.as_deref().map(str::parse) {
                Some(Ok(id)) => id,
                _ => panic!("a reconnect without a numeric Last-Event-ID: {asked:?}"),
            })
            .collect()
    }
}

async fn serve(mut socket: TcpStream, feeds: &[Served], requests: &Mutex<Vec<OriginRequest>>) {
    let Some(head) = read_request_head(&mut socket).await else {
        return;
    };
    let last_event_id = head.last_event_id().map(str::to_owned);
    requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(OriginRequest {
            path: head.path().to_owned(),
            last_event_id: last_event_id.clone(),
        });
    let Some(served) = feeds.iter().find(|s| s.feed.path == head.path()) else {
        let _ = socket.write_all(NOT_FOUND).await;
        return;
    };
    let feed = &served.feed;
    let first = match feed.replay {
        Replay::FromLastEventId => last_event_id
            .and_then(|id| id.parse::<u64>().ok())
            .map_or(1, |id| id.saturating_add(1)),
        Replay::Live => served.next_live.load(Ordering::SeqCst),
    };
    if socket.write_all(HEAD).await.is_err() {
        return;
    }
    for n in first..=feed.total {
        let text = feed.event_text(n);
        let frame = format!("{:x}\r\n{text}\r\n", text.len());
        if socket.write_all(frame.as_bytes()).await.is_err() {
            return;
        }
        served.next_live.fetch_max(n + 1, Ordering::SeqCst);
        sleep(feed.interval).await;
    }
    // All sent: keep the stream open until the client goes away.
    let mut buf = [0u8; 256];
    while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_text_has_one_data_line_per_line() {
        let feed = Feed::new("/e", 3)
            .event_type("tick")
            .data(|n| format!("a{n}\nb{n}"));
        assert_eq!(
            feed.event_text(2),
            "id: 2\nevent: tick\ndata: a2\ndata: b2\n\n"
        );
        assert_eq!(
            Feed::new("/e", 1).event_text(1),
            "id: 1\ndata: {\"seq\":1}\n\n"
        );
        let mixed = Feed::new("/e", 2).event_types(|n| format!("e{}", n % 2));
        assert_eq!(
            mixed.event_text(2),
            "id: 2\nevent: e0\ndata: {\"seq\":2}\n\n"
        );
    }

    async fn get(addr: SocketAddr, path: &str, last: Option<&str>, until: &str) -> String {
        let mut socket = TcpStream::connect(addr).await.unwrap();
        let last = last.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
        let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\n{last}\r\n");
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&got).contains(until) {
            let n = socket.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(got).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn feeds_replay_or_go_live_per_path() {
        let origin = Origin::start([Feed::new("/a", 5), Feed::new("/b", 5).replay(Replay::Live)])
            .await
            .unwrap();
        let a = get(origin.addr(), "/a?x=1", Some("3"), "id: 5\n").await;
        assert!(!a.contains("id: 3\n") && a.contains("id: 4\n"), "{a}");
        let b = get(origin.addr(), "/b", None, "id: 2\n").await;
        assert!(b.contains("id: 1\n"), "{b}");
        // The live feed goes on where it is, whatever the client asks.
        let b = get(origin.addr(), "/b", Some("0"), "id: 5\n").await;
        assert!(!b.contains("id: 1\n"), "{b}");
        let missing = get(origin.addr(), "/c", None, "\r\n\r\n").await;
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        assert_eq!(origin.last_event_ids("/a"), [Some("3".to_owned())]);
        assert_eq!(origin.last_event_ids("/b"), [None, Some("0".to_owned())]);
        assert_eq!(origin.requests().len(), 4);
    }
}
