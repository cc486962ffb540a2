//! An embedded, crash-safe store for apps built on the wot-live crates: where each event
//! stream stands (resume points), the alert engine's state and outbox, and a bounded history
//! of events and property values, in one [redb](https://crates.io/crates/redb) file.
//!
//! Writes go in [`Batch`]es to one writer thread, which commits every batch waiting into one
//! transaction with an fsync (group commit): a batch is on disk entirely or not at all, and
//! on disk once its [`Commit`] resolves. A power cut or `kill -9` loses only batches not yet
//! acknowledged.
//!
//! ```
//! use std::time::SystemTime;
//! use wot_events::{EventRecord, serde_json::json};
//! use wot_store::{Batch, RestoreLimits, Store};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), wot_store::Error> {
//! # let dir = std::env::temp_dir().join(format!("wot-store-doc-{}", std::process::id()));
//! let store = Store::open(&dir)?;
//! let mut batch = Batch::new();
//! batch.push_event(&EventRecord {
//!     thing_id: "urn:dev:boiler".into(),
//!     thing_title: "Boiler".into(),
//!     event: "overheat".into(),
//!     data: json!({"t": 91.5}).into(),
//!     event_id: Some("1".into()),
//!     received_at: SystemTime::now(),
//! });
//! store.commit(batch).await?; // durable from here on
//! drop(store);
//!
//! // After a restart:
//! let store = Store::open(&dir)?;
//! let history = store.restore_history(&RestoreLimits::default())?;
//! assert_eq!(history.events.len(), 1);
//! # drop(store);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! ```
//!
//! # Limits
//!
//! The history keeps records for [`DEFAULT_HISTORY_AGE`] (24 h), at most
//! [`DEFAULT_HISTORY_RECORDS`] (1,000,000) records and [`DEFAULT_HISTORY_BYTES`] (256 MiB) of
//! encoded records; a record over [`DEFAULT_MAX_RECORD_BYTES`] (256 KiB) is dropped and
//! counted, as is a record whose value nests more than 128 arrays or objects deep. Pruning
//! removes whole blocks (one series' records from one commit, up to 60 KiB), oldest first, in
//! the commits that add records: by count and size as much as the commit added, by age up to
//! 64 blocks per commit. At most [`DEFAULT_QUEUE`] (64) batches wait for the writer; past that,
//! [`Store::submit`] waits. Resume points are kept for at most [`DEFAULT_MAX_STREAMS`]
//! (100,000) streams, each with at most 256 recent ids (both trimmed when loaded). Counters
//! and sizes found in the file are checked, never trusted: a damaged or crafted file that
//! passes the engine's checksums gives [`Error::Corrupt`] or skipped (counted) history blocks,
//! never a panic or an allocation it sizes.
//!
//! # What is where
//!
//! - [`Store`]: open, submit batches, read back; [`Store::batch`] hands out emptied batches
//!   to reuse their buffers. Closing (dropping the store, [`Store::close`]) blocks until the
//!   queued batches are committed; async code ends with [`Store::close_async`].
//! - [`Batch`]: history records, resume points, alert changes, all or nothing.
//! - [`ResumePoints`] ([`Store::resume_points`]): a `wot_events::ResumeStore` whose advances
//!   are written by [`ResumePoints::add_to`] into the batch that also holds their output.
//! - [`Alerts`] ([`Store::alerts`]): a `wot_alerts::AlertStore` (engine state and outbox).
//! - [`Store::restore_history`]: the newest events and property values within
//!   [`RestoreLimits`].
//! - [`Batch::set_meta`] and [`Store::meta`]: a small app-owned value (at most
//!   [`MAX_META_VALUE_BYTES`], 16 KiB) committed with a batch, with the [`HistoryPosition`]
//!   where that batch's records begin; [`Store::history_since`] hands back every record from
//!   such a position on. An app that writes output outside the store (lines to a file) makes
//!   that output part of the committed state this way: after a crash it cuts the output back
//!   to what the value says and writes the output of those records again.
//!
//! # Format versions
//!
//! The file records its format version ([`FORMAT_VERSION`]). A file in another version is
//! refused with [`Error::Version`], naming both versions and the path; it is never read as
//! this version.

mod alerts;
mod batch;
mod codec;
mod error;
mod history;
mod meta;
mod options;
mod resume;
mod store;

pub use alerts::Alerts;
pub use batch::Batch;
pub use codec::HistoryRecord;
pub use error::Error;
pub use history::{
    DEFAULT_RESTORE_EVENTS, DEFAULT_RESTORE_PER_PROPERTY, DEFAULT_RESTORE_PROPERTIES,
    DEFAULT_RESTORE_SINCE, RestoreLimits, RestoredHistory, RestoredProperty,
};
pub use meta::{HistoryPosition, MAX_META_KEY_BYTES, MAX_META_VALUE_BYTES, Meta};
pub use options::{
    DEFAULT_HISTORY_AGE, DEFAULT_HISTORY_BYTES, DEFAULT_HISTORY_RECORDS, DEFAULT_MAX_RECORD_BYTES,
    DEFAULT_MAX_STREAMS, DEFAULT_QUEUE, StoreOptions,
};
pub use resume::ResumePoints;
pub use store::{Commit, FILE_NAME, FORMAT_VERSION, Stats, Store};
