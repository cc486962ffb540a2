//! `wot-sse`: a conforming, resumable Server-Sent Events client as a `futures::Stream`.
//!
//! The client connects with `Accept: text/event-stream`, yields events as they arrive,
//! reconnects with exponential backoff when the connection is lost, and resumes with
//! `Last-Event-ID`. Recoverable errors are yielded and the stream goes on; terminal ones end it.
//!
//! ```no_run
//! # #[cfg(feature = "client")]
//! # mod quickstart {
//! use futures::StreamExt;
//! use wot_sse::SseClient;
//!
//! # async fn run() -> Result<(), wot_sse::Error> {
//! let client = SseClient::new();
//! let mut events = client
//!     .get("https://thing.example/things/lamp/properties/observe")
//!     .bearer_token("secret")
//!     .connect()?;
//! while let Some(item) = events.next().await {
//!     match item {
//!         Ok(event) => println!("{} {} (id {})", event.event_type(), event.data(), event.id()),
//!         Err(error) if error.is_terminal() => return Err(error),
//!         Err(error) => eprintln!("{error}; reconnecting"),
//!     }
//! }
//! # Ok(())
//! # }
//! # }
//! ```
//!
//! The parser underneath is sans-I/O and usable alone ([`parser`]); with
//! `default-features = false` (no `client` feature) the crate builds without tokio and reqwest.
//!
//! See `docs/sse.md` in the repository for every option, its default, and the conformance
//! rules with the tests that prove them.

// Input from the network must never panic this crate: the panicking forms are denied outside
// tests (the one deliberate panic, `SseClient::new` on a broken TLS backend, is documented).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::indexing_slicing,
        clippy::string_slice,
        clippy::unchecked_time_subtraction
    )
)]

#[cfg(feature = "client")]
mod backoff;
#[cfg(feature = "client")]
mod client;
#[cfg(feature = "client")]
mod connect;
#[cfg(feature = "client")]
mod error;
mod event;
pub mod parser;
#[cfg(feature = "client")]
mod stream;

#[cfg(feature = "client")]
pub use backoff::{
    DEFAULT_MAX_RETRY_AFTER, DEFAULT_MIN_SERVER_RETRY, DEFAULT_STABLE_AFTER, ReconnectPolicy,
};
#[cfg(feature = "client")]
pub use client::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_REDIRECTS, RequestBuilder,
    SseClient, SseClientBuilder, redact_url,
};
#[cfg(feature = "client")]
pub use connect::parse_retry_after;
#[cfg(feature = "client")]
pub use error::{ConnectFailure, Error, is_retryable_status};
pub use event::{Event, EventId};
#[cfg(feature = "client")]
pub use stream::{CloseReason, ConnectionState, EventStream, Message, Messages, StreamHandle};

/// Dependency types that appear in this crate's signatures.
#[cfg(feature = "client")]
pub use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
#[cfg(feature = "client")]
pub use reqwest;
#[cfg(feature = "client")]
pub use tokio::sync::watch;
