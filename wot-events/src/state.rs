//! The connection state of a subscription or observer, the same for every transport.
//!
//! ```text
//! Connecting ──answer / data──▶ Open
//!     │                          │ connection lost, request failed
//!     │ failed                   ▼
//!     └─────────▶ Reconnecting { attempt, delay } ──after delay──▶ (next attempt)
//!
//! any state ──▶ Closed { Requested | EndedByServer | Failed(error) }
//! ```

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::watch;

use crate::error::Error;

/// The state of the connection behind a [`Subscription`](crate::Subscription) or a
/// [`PropertyObserver`](crate::PropertyObserver), whatever the transport (SSE, long polling
/// or polling).
///
/// Watch it with the `watch::Receiver` that [`Subscription::state`](crate::Subscription::state)
/// and [`PropertyObserver::connections`](crate::PropertyObserver::connections) give. It
/// starts at [`Connecting`](Self::Connecting) and ends at [`Closed`](Self::Closed). New
/// states may be added.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// The first request is on its way.
    Connecting,
    /// The connection is open (SSE), or the last request was answered (polling and long
    /// polling).
    Open,
    /// The connection was lost or a request failed; waiting `delay` before attempt `attempt`.
    Reconnecting {
        /// Failed attempts in a row, from 1.
        attempt: u32,
        /// The wait before the next attempt, from the subscriber's
        /// [`ReconnectPolicy`](crate::ReconnectPolicy).
        delay: Duration,
    },
    /// The connection has ended and will not be opened again.
    Closed {
        /// Why it ended.
        reason: CloseReason,
    },
}

/// Why a connection ended. New reasons may be added.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CloseReason {
    /// The stream was closed ([`Subscription::unsubscribe`](crate::Subscription::unsubscribe))
    /// or dropped.
    Requested,
    /// The server told the client to stop (an SSE answer `204 No Content`).
    EndedByServer,
    /// A terminal error, also yielded as the stream's last item.
    Failed(Error),
}

impl PartialEq for CloseReason {
    /// Errors compare by kind and text.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Requested, Self::Requested) | (Self::EndedByServer, Self::EndedByServer) => true,
            (Self::Failed(a), Self::Failed(b)) => {
                a.kind() == b.kind() && a.to_string() == b.to_string()
            }
            _ => false,
        }
    }
}

impl ConnectionState {
    /// The same state of an SSE stream, with its error as this crate's.
    fn from_sse(state: &wot_sse::ConnectionState) -> Self {
        match state {
            wot_sse::ConnectionState::Open => Self::Open,
            &wot_sse::ConnectionState::Reconnecting { attempt, delay } => {
                Self::Reconnecting { attempt, delay }
            }
            wot_sse::ConnectionState::Closed { reason } => Self::Closed {
                reason: match reason {
                    wot_sse::CloseReason::NoContent => CloseReason::EndedByServer,
                    wot_sse::CloseReason::Failed(error) => {
                        CloseReason::Failed(Error::from_sse(error.clone()))
                    }
                    // `Requested`, and reasons wot-sse may add.
                    _ => CloseReason::Requested,
                },
            },
            // `Connecting`, and states wot-sse may add.
            _ => Self::Connecting,
        }
    }
}

/// The sending side of a connection state: the transport that drives it sets it, and
/// dropping it (the stream was closed or dropped) leaves `Closed { Requested }` unless the
/// state is already `Closed`.
#[derive(Debug)]
pub(crate) struct StatePublisher {
    tx: watch::Sender<ConnectionState>,
}

impl StatePublisher {
    /// A publisher at `Connecting`, and a receiver of its states.
    pub(crate) fn new() -> (Self, watch::Receiver<ConnectionState>) {
        let (tx, rx) = watch::channel(ConnectionState::Connecting);
        (Self { tx }, rx)
    }

    /// Publishes `state` if it differs from the current one: receivers hear of changes
    /// only (a poll answered after another is not a new `Open`).
    pub(crate) fn set(&self, state: ConnectionState) {
        self.tx.send_if_modified(|current| {
            let changed = *current != state;
            if changed {
                *current = state;
            }
            changed
        });
    }

    /// Ends the state with a terminal error.
    pub(crate) fn fail(&self, error: &Error) {
        self.set(ConnectionState::Closed {
            reason: CloseReason::Failed(error.clone()),
        });
    }
}

impl Drop for StatePublisher {
    fn drop(&mut self) {
        self.tx.send_if_modified(|state| {
            let open = !matches!(state, ConnectionState::Closed { .. });
            if open {
                *state = ConnectionState::Closed {
                    reason: CloseReason::Requested,
                };
            }
            open
        });
    }
}

/// A stream that carries the state of an SSE stream over into a [`StatePublisher`] each time
/// it is polled (the SSE stream changes state only while it is polled, so nothing is missed).
pub(crate) struct SseStateSync<S> {
    pub(crate) inner: S,
    pub(crate) sse: watch::Receiver<wot_sse::ConnectionState>,
    pub(crate) publisher: StatePublisher,
}

impl<S: Stream + Unpin> Stream for SseStateSync<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = &mut *self;
        let item = this.inner.poll_next_unpin(cx);
        if this.sse.has_changed().unwrap_or(false) {
            let state = ConnectionState::from_sse(&this.sse.borrow_and_update());
            this.publisher.set(state);
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_state_again_is_not_a_change() {
        let (publisher, mut rx) = StatePublisher::new();
        publisher.set(ConnectionState::Open);
        assert!(rx.has_changed().unwrap());
        rx.mark_unchanged();
        publisher.set(ConnectionState::Open);
        assert!(!rx.has_changed().unwrap());
        let reconnecting = ConnectionState::Reconnecting {
            attempt: 1,
            delay: Duration::from_secs(1),
        };
        publisher.set(reconnecting.clone());
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), reconnecting);
    }

    #[test]
    fn dropping_the_publisher_closes_an_open_state_but_keeps_a_failure() {
        let (publisher, rx) = StatePublisher::new();
        publisher.set(ConnectionState::Open);
        drop(publisher);
        assert_eq!(
            *rx.borrow(),
            ConnectionState::Closed {
                reason: CloseReason::Requested
            }
        );

        let (publisher, rx) = StatePublisher::new();
        let error = Error::from(crate::error::Repr::Config("x".to_owned()));
        publisher.fail(&error);
        drop(publisher);
        assert!(matches!(
            &*rx.borrow(),
            ConnectionState::Closed { reason: CloseReason::Failed(e) } if e.to_string() == error.to_string()
        ));
    }
}
