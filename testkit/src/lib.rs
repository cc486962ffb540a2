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
//! * [`hostile::HostileThing`]: a Thing that serves a TD and SSE streams the way a broken or
//!   malicious device would, one named [`hostile::Scenario`] at a time, with a second origin
//!   that records what reaches it.
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
pub mod hostile;
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

/// Checks what a consumer saw when the connection broke in the middle of value `cut` and the
/// server could not replay. `seen` is what the stream yielded, in order: the sequence number
/// of each value, `None` for each error item.
///
/// Values arrive in increasing order, 1 to `cut - 1` first; the half-sent value `cut` never
/// arrives; the first error comes right after `cut - 1`, and the value right after it is
/// above `cut`, so the gap is visible next to its error.
///
/// # Panics
///
/// When any of that does not hold: this is a test assertion.
pub fn assert_gap_next_to_error(seen: &[Option<u64>], cut: u64) {
    let got: Vec<u64> = seen.iter().flatten().copied().collect();
    assert!(got.windows(2).all(|w| w[0] < w[1]), "not in order: {got:?}");
    let before: Vec<u64> = (1..cut).collect();
    assert_eq!(got.get(..before.len()), Some(before.as_slice()), "{got:?}");
    assert!(
        !got.contains(&cut),
        "the half-sent value {cut} was delivered: {got:?}"
    );
    let error_at = seen
        .iter()
        .position(Option::is_none)
        .expect("the cut was not reported");
    assert_eq!(
        error_at.checked_sub(1).and_then(|i| seen[i]),
        Some(cut - 1),
        "{seen:?}"
    );
    assert!(
        matches!(seen.get(error_at + 1), Some(Some(n)) if *n > cut),
        "{seen:?}"
    );
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

#[cfg(test)]
mod tests {
    use super::assert_gap_next_to_error;

    #[test]
    fn a_gap_right_after_the_error_passes() {
        assert_gap_next_to_error(&[Some(1), Some(2), Some(3), None, Some(7), Some(8)], 4);
    }

    #[test]
    #[should_panic(expected = "the half-sent value 4 was delivered")]
    fn a_delivered_half_value_fails() {
        assert_gap_next_to_error(&[Some(1), Some(2), Some(3), None, Some(4)], 4);
    }

    #[test]
    #[should_panic]
    fn a_gap_away_from_the_error_fails() {
        assert_gap_next_to_error(&[Some(1), Some(2), None, Some(3), Some(7)], 4);
    }
}
