//! Test helpers for the workspace's integration tests (internal, not published).
//!
//! * [`serve_connections`]: the accept loop of every test server: one task per connection,
//!   all aborted when the server is dropped.
//! * [`read_request_head`]: read an HTTP/1.1 request head from a raw socket, as the scripted
//!   servers in the tests do.
//! * [`Origin`]: an SSE server on 127.0.0.1 serving one or more [`Feed`]s (one per path), each
//!   numbering its events 1, 2, 3, … and either replaying after the `Last-Event-ID` the client
//!   sends or acting as a live feed that replays nothing ([`Replay`]).
//! * [`Proxy`]: a TCP proxy on 127.0.0.1 in front of a server that applies one [`Fault`] per
//!   accepted connection, in script order: cut, stall, delay, error status, silence, refusal.
//!
//! Everything here runs on tokio and works on its paused clock: the waits (event interval,
//! delays, refusal periods) are `tokio::time` sleeps, so a test with
//! `#[tokio::test(start_paused = true)]` runs them in no real time. Every spawned task is
//! aborted when the value that owns it is dropped.
//!
//! ```
//! use wot_testkit::{Fault, Feed, Origin, Proxy, Replay};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let origin = Origin::start([
//!     Feed::new("/events/overheat", 10).event_type("overheat"),
//!     Feed::new("/properties/temp/observe", 10)
//!         .event_type("temp")
//!         .data(|n| n.to_string())
//!         .replay(Replay::Live),
//! ])
//! .await?;
//! let proxy = Proxy::start(origin.addr(), vec![Fault::CutAfter("id: 3\n".into())]).await?;
//! let url = format!("http://{}/events/overheat", proxy.addr());
//! # let _ = url;
//! # Ok(())
//! # }
//! ```

mod head;
mod origin;
mod proxy;

pub use head::{MAX_HEAD, RequestHead, read_request_head};
pub use origin::{Feed, Origin, OriginRequest, Replay};
pub use proxy::{Fault, Proxy};

use std::future::Future;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Aborts a spawned task when dropped, so that no server outlives the test that owns it.
#[derive(Debug)]
pub struct AbortOnDrop(pub JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Accepts connections on `listener` and handles connection `n` (from 0) with
/// `handler(n, socket)`, each on its own task. Dropping the returned value stops accepting and
/// aborts every connection task still running.
pub fn serve_connections<H, F>(listener: TcpListener, mut handler: H) -> AbortOnDrop
where
    H: FnMut(usize, TcpStream) -> F + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    AbortOnDrop(tokio::spawn(async move {
        let mut conns: Vec<AbortOnDrop> = Vec::new();
        for index in 0.. {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            conns.retain(|c| !c.0.is_finished());
            conns.push(AbortOnDrop(tokio::spawn(handler(index, socket))));
        }
    }))
}
