//! `wot-events`: subscribe to events and observe properties of W3C Web of Things devices,
//! from their Thing Descriptions, without writing protocol code.
//!
//! ```no_run
//! use futures::StreamExt;
//! use wot_events::{EventLog, EventSubscriber, FilterExpr, SubscribeOptions};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let subscriber = EventSubscriber::new();
//! let boiler = subscriber.fetch_thing("http://192.0.2.10/things/boiler").await?;
//! let critical: FilterExpr =
//!     serde_json::from_str(r#"{"eq": {"pointer": "/severity", "value": "critical"}}"#)?;
//! let opts = SubscribeOptions::new().filter(critical.compile()?);
//! let mut events = subscriber.subscribe_all([&boiler], opts)?;
//! let mut log = EventLog::new();
//! while let Some(item) = events.next().await {
//!     match item {
//!         Ok(record) => log.push(record),
//!         Err(e) => eprintln!("{e}"),
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! An app that must survive a restart gives the subscriber a [`ResumeStore`]
//! ([`EventSubscriberBuilder::resume_store`]): its SSE streams then start again after the last
//! event they handed over (`Last-Event-ID`), and drop events a server sends again (by id).
//!
//! The pure parts (filters, ring buffers, the [`EventLog`] timeline, problem details) do no
//! I/O and take the clock as an argument. The async parts are streams that own their
//! connections: dropping one closes it, and no task is left behind.
//!
//! See `docs/events.md` in the repository for a guide.

// Input from the network or a file must never panic this crate: the panicking forms are
// denied outside tests (see "Panics" in docs/reliability.md).
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

mod decode;
mod error;
mod events;
mod filter;
mod log;
mod problem;
mod properties;
mod record;
mod resume;
mod security;
mod skipped;
mod state;
mod subscriber;
mod thing;
mod transport;

pub use decode::PropertyDecoder;
pub use error::{Error, ErrorKind};
pub use events::{
    DEFAULT_BUFFER, DEFAULT_BUFFER_BYTES, InvalidData, MergedSubscription, SubscribeOptions,
    Subscription,
};
pub use filter::{
    Compare, ExistsTest, Filter, FilterError, FilterExpr, MAX_FILTER_DEPTH, MAX_REGEX_LEN,
    RegexTest,
};
pub use log::{
    DEFAULT_LOG_BYTES, DEFAULT_LOG_CAPACITY, DEFAULT_RATE_WINDOW, EventLog, LogQuery, LogStats,
};
pub use problem::ProblemDetails;
pub use properties::{
    DEFAULT_HISTORY, DEFAULT_HISTORY_BYTES, DEFAULT_POLL_INTERVAL, ObserveMode, ObserveOptions,
    PropertyObserver,
};
pub use record::{
    ByteSize, EventRecord, PropertyHistory, PropertyUpdate, RingBuffer, SharedStr, rfc3339,
};
pub use resume::{
    DEFAULT_DEDUP_WINDOW, DEFAULT_MAX_RESUME_ID_LEN, DEFAULT_MAX_STREAMS, MemoryResumeStore,
    ResumePoint, ResumeStore, StreamKey,
};
pub use security::{Credential, Credentials};
pub use skipped::SkippedAffordance;
pub use state::{CloseReason, ConnectionState};
pub use subscriber::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_LONG_POLL_TIMEOUT, DEFAULT_MAX_BODY,
    DEFAULT_MAX_DIRECTORY_ENTRIES, DEFAULT_MAX_REDIRECTS, DEFAULT_MAX_RESPONSE_BODY,
    DEFAULT_REQUEST_TIMEOUT, EventSubscriber, EventSubscriberBuilder,
};
pub use thing::ConsumedThing;
pub use wot_td::Data;

/// The examples of `docs/events.md`, compiled and run as doc tests.
#[cfg(all(doctest, wot_events_guide))]
#[doc = include_str!("../../docs/events.md")]
pub struct GuideExamples;

// Dependency types and crates that appear in this crate's signatures, so that users need
// not depend on them (and on matching versions) themselves.
pub use http::StatusCode;
pub use reqwest;
pub use serde_json;
pub use tokio::sync::watch;
pub use url::Url;
pub use wot_sse::{ReconnectPolicy, SseClient, SseClientBuilder};
pub use wot_td;
