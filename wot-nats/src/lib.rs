//! Watch a fleet of W3C WoT Things from many processes through NATS JetStream: publish every
//! property value, event and connection change of the Things to a JetStream stream, share
//! the Things among collectors with leases in a key-value bucket, and resume a Thing's
//! streams where the collector before stopped.
//!
//! A crate of its own, so that the NATS client stays out of the dependency tree of apps that
//! use `wot-events` alone. It builds on `wot-events`: the records it publishes are
//! `wot-events`' [`PropertyUpdate`](wot_events::PropertyUpdate) and
//! [`EventRecord`](wot_events::EventRecord), and [`KvResumeStore`] is a
//! [`wot_events::ResumeStore`].
//!
//! ```no_run
//! use std::time::SystemTime;
//! use wot_events::{EventRecord, serde_json::json};
//! use wot_nats::{Publisher, Record};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), wot_nats::Error> {
//! let client = wot_nats::connect("nats://127.0.0.1:4222", wot_nats::DEFAULT_TIMEOUT).await?;
//! let publisher = Publisher::builder().build(client)?;
//! publisher.ensure_stream().await?; // the stream `WOT` over `wot.>`
//! let ack = publisher
//!     .publish(&Record::Event(EventRecord {
//!         thing_id: "urn:dev:boiler".into(),
//!         thing_title: "Boiler".into(),
//!         event: "overheat".into(),
//!         data: json!({"t": 91.5}).into(),
//!         event_id: Some("42".into()),
//!         received_at: SystemTime::now(),
//!     }))
//!     .await?;
//! // Published again (a collector resumed from an earlier id): stored once.
//! # let _ = ack;
//! # Ok(())
//! # }
//! ```
//!
//! # What is where
//!
//! - [`connect`]: a NATS connection with a time limit; errors never show the URL's user info.
//! - [`Publisher`]: creates or checks the stream, publishes [`Record`]s with at most
//!   [`max_in_flight`](PublisherBuilder::max_in_flight) unacknowledged.
//! - [`Leases`]: claim, renew, release a Thing in the lease bucket.
//! - [`KvResumeStore`]: a `wot_events::ResumeStore` in the resume bucket.
//! - [`Collector`]: all of the above for a list of Things: holds a fair share of them,
//!   watches each one it holds with wot-events, publishes everything, and stops watching a
//!   Thing whose lease it lost.
//! - [`Evaluator`]: alert rules (`wot-alerts`' engine) evaluated over the property records
//!   of the partitions it holds, each partition under a lease and read by a durable consumer,
//!   the engine state checkpointed to a bucket ([`Checkpoint`]) so that another evaluator
//!   takes the partition over without firing an alert twice; notifications published as
//!   [`AlertMessage`]s.
//! - [`Subjects`], [`encode_token`], [`decode_token`], [`partition`], [`message_id`]: the
//!   naming, for consumers of the stream.
//!
//! # Subjects
//!
//! | subject | records |
//! |---|---|
//! | `<prefix>.p<k>.<thing>.prop.<name>` | property values |
//! | `<prefix>.p<k>.<thing>.event.<name>` | events |
//! | `<prefix>.p<k>.<thing>.conn` | connection changes |
//! | `<prefix>-alerts.<thing>.<rule>` | alert notifications ([`Evaluator`], stream `WOT_ALERTS`) |
//!
//! The prefix is `wot` by default ([`Subjects`]). `<k>` is the Thing's [`partition`]: the
//! 64-bit FNV-1a hash of its id modulo the fleet's partition count (16 by default), so that
//! an alert evaluator for partition `k` consumes `wot.pk.>` and sees each Thing's records in
//! order. (nats-server 2.9 has no subject transforms that could partition for us.)
//!
//! `<thing>` and `<name>` are one token each ([`encode_token`]): ASCII letters, digits, `-`
//! and `_` stay, every other byte of the UTF-8 text is written `=HH` (uppercase hex), the
//! empty text is `=`. [`decode_token`] is the exact inverse. The escape is `=` because
//! key-value keys, which use the same tokens, allow only `-/_=.` besides letters and digits. A Thing id has at most [`MAX_THING_ID_LEN`] bytes, a name
//! [`MAX_NAME_LEN`], so the longest subject fits the server's 4 KiB control line.
//!
//! # Records
//!
//! JSON, versioned (`"v": 1`): see [`Record`] for the schema table. A reader refuses a
//! version it does not know ([`ErrorKind::Version`]) rather than misread it.
//!
//! # Exactly once across a failover
//!
//! A record with an SSE event id is published with a `Nats-Msg-Id` header ([`message_id`])
//! made of the Thing id, the stream (`event/<name>`, `property/<name>`) and the event id. The
//! stream drops a message whose id it stored within its duplicate window (default 2 min,
//! [`DEFAULT_DUPLICATE_WINDOW`]). A collector that takes a Thing over resumes its SSE streams
//! from the last event id recorded in the resume bucket. That point moves only when the
//! record of its event is acknowledged ([`KvResumeStoreBuilder::after_publish`]) and is
//! written every second, so it is at or a little behind what the dead collector stored: the
//! events published a second time are dropped by the stream. Values from polling and long
//! polling and connection changes have no event id and no message id: they cannot be
//! de-duplicated.
//!
//! # Buckets
//!
//! | bucket | key | value | max age |
//! |---|---|---|---|
//! | `wot-leases` ([`Leases`]) | the Thing id as one token | `{"v":1,"holder":"<collector>"}` | the lease time, 10 s |
//! | `wot-resume` ([`KvResumeStore`]) | the Thing id as one token | the Thing's streams' resume points | 7 days |
//! | `wot-members` ([`Leases::announce`]) | the collector's name as one token | as a lease | the lease time |
//! | `wot-evaluators` ([`Evaluator`]) | `p<k>` | the evaluator holding partition `k`, as a lease | the lease time |
//! | `wot-evaluator-members` ([`Evaluator`]) | the evaluator's name as one token | as a lease | the lease time |
//! | `wot-alert-state` ([`Checkpoint`]) | `p<k>` | partition `k`'s engine state and stream sequence | none |
//!
//! All keep one value per key (history 1). The resume bucket has one key per Thing rather
//! than per stream: `ResumeStore::load` is synchronous, so a collector reads a Thing's
//! points before building its streams, and on nats-server 2.9 one key is one read.
//!
//! # Server version
//!
//! Works with nats-server 2.9 and later, and uses nothing newer: key-value buckets with a
//! bucket-wide max age, create and update with a revision (compare-and-set), the duplicate
//! window and `Nats-Msg-Id`. No per-message TTL, no subject transforms. The NATS client is
//! built without its `server_2_10` and later features for that reason.

mod bucket;
mod collector;
mod connect;
mod error;
mod evaluator;
mod lease;
mod msgid;
mod publisher;
mod record;
mod resume;
mod subject;

pub use collector::{
    Collector, CollectorBuilder, DEFAULT_CLAIMS_PER_ROUND, DEFAULT_MAX_HELD, DEFAULT_PIPELINE,
    DEFAULT_REST,
};
pub use connect::{DEFAULT_TIMEOUT, connect, redact_url};
pub use error::{Error, ErrorKind};
pub use evaluator::{
    ALERT_MESSAGE_VERSION, AlertMessage, CHECKPOINT_VERSION, Checkpoint, DEFAULT_ALERTS_STREAM,
    DEFAULT_BATCH, DEFAULT_CHECKPOINT_INTERVAL, DEFAULT_EVALUATOR_BUCKET,
    DEFAULT_EVALUATOR_MEMBERS_BUCKET, DEFAULT_MAX_CHECKPOINT_BYTES, DEFAULT_MAX_UNACKED,
    DEFAULT_STATE_BUCKET, DEFAULT_TICK_INTERVAL, Evaluator, EvaluatorBuilder, EvaluatorStats,
    MAX_ALERT_MESSAGE_BYTES, MAX_RECORD_TIME_AHEAD,
};
pub use lease::{
    DEFAULT_LEASE_BUCKET, DEFAULT_LEASE_TTL, DEFAULT_MEMBERS_BUCKET, Lease, LeaseStatus, Leases,
    LeasesBuilder, MAX_HOLDER_LEN, MAX_MEMBERS,
};
pub use msgid::{MAX_MESSAGE_ID_LEN, message_id};
pub use publisher::{
    Ack, DEFAULT_DUPLICATE_WINDOW, DEFAULT_MAX_AGE, DEFAULT_MAX_BYTES, DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_STREAM, Outgoing, PendingAck, Publisher, PublisherBuilder,
};
pub use record::{CloseCause, ConnectionChange, LinkState, MAX_ERROR_TEXT, Record, SCHEMA_VERSION};
pub use resume::{
    DEFAULT_FLUSH_INTERVAL, DEFAULT_MAX_STREAMS_PER_THING, DEFAULT_MAX_THINGS,
    DEFAULT_MAX_VALUE_BYTES, DEFAULT_RESUME_BUCKET, DEFAULT_RESUME_BUCKET_BYTES,
    DEFAULT_RESUME_MAX_AGE, DEFAULT_STORED_RECENT_IDS, KvResumeStore, KvResumeStoreBuilder,
};
pub use subject::{
    DEFAULT_PARTITIONS, DEFAULT_PREFIX, MAX_NAME_LEN, MAX_PREFIX_LEN, MAX_THING_ID_LEN,
    ParsedSubject, SubjectKind, Subjects, decode_token, encode_token, partition, token,
};

// The NATS client, whose types appear in this crate's signatures.
pub use async_nats;
