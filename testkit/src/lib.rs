//! Test helpers for the workspace's integration tests (internal, not published).
//!
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

use tokio::task::JoinHandle;

/// Aborts a spawned task when dropped, so that no server outlives the test that owns it.
#[derive(Debug)]
pub struct AbortOnDrop(pub JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
