//! Alert evaluation as durable JetStream consumers, one per partition, with the engine state
//! checkpointed to a key-value bucket.
//!
//! See [`Evaluator`] for the design: partitions, leases, the checkpoint rule, the notification
//! subjects and what happens on a failure.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_nats::jetstream::{self, consumer, kv, stream};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use wot_alerts::{
    Alert, Engine, EngineState, NotificationKind, RestoreReport, Rule, Silence, SilenceId,
};

use crate::bucket::ensure_bucket;
use crate::connect::DEFAULT_TIMEOUT;
use crate::error::{Error, Repr};
use crate::lease::{DEFAULT_LEASE_TTL, Lease, LeaseStatus, Leases};
use crate::publisher::{
    DEFAULT_DUPLICATE_WINDOW, DEFAULT_MAX_AGE, DEFAULT_MAX_BYTES, DEFAULT_STREAM,
};
use crate::record::Record;
use crate::subject::{MAX_NAME_LEN, Subjects, encode_token};

/// The default bucket of the evaluators' partition leases: `wot-evaluators`.
pub const DEFAULT_EVALUATOR_BUCKET: &str = "wot-evaluators";

/// The default bucket where evaluators announce themselves: `wot-evaluator-members`.
pub const DEFAULT_EVALUATOR_MEMBERS_BUCKET: &str = "wot-evaluator-members";

/// The default bucket of the partitions' checkpoints: `wot-alert-state`.
pub const DEFAULT_STATE_BUCKET: &str = "wot-alert-state";

/// The default stream of the notifications: `WOT_ALERTS`.
pub const DEFAULT_ALERTS_STREAM: &str = "WOT_ALERTS";

/// The default limit on one checkpoint (the JSON of a partition's engine state and where it
/// stands in the stream): 900 KiB, under the server's default 1 MiB message limit.
pub const DEFAULT_MAX_CHECKPOINT_BYTES: usize = 900 * 1024;

/// The default time between checkpoints of a partition with new records: 1 s.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// The default time between evaluations of hold times and no-data deadlines: 1 s.
pub const DEFAULT_TICK_INTERVAL: Duration = Duration::from_secs(1);

/// The default number of records taken at once from a partition's consumer: 256.
pub const DEFAULT_BATCH: usize = 256;

/// The default number of records processed but not acknowledged that make a checkpoint be
/// written at once, before the interval: 4,096.
pub const DEFAULT_MAX_UNACKED: usize = 4096;

/// The version of the [`Checkpoint`] JSON this build writes and reads.
pub const CHECKPOINT_VERSION: u32 = 1;

/// The version of the [`AlertMessage`] JSON this build writes.
pub const ALERT_MESSAGE_VERSION: u32 = 1;

/// The most bytes of a notification's JSON: past it, the property value is left out and the
/// summary cut (a Thing controls the value).
pub const MAX_ALERT_MESSAGE_BYTES: usize = 64 * 1024;

/// How far ahead of this process's clock a record's `received_at` is taken: 5 minutes
/// (`wot_alerts::MAX_SAVED_TIME_AHEAD`). A record further ahead is evaluated at that bound, so
/// a collector with a wrong clock cannot move a partition's engine far into the future.
pub const MAX_RECORD_TIME_AHEAD: Duration = wot_alerts::MAX_SAVED_TIME_AHEAD;

/// How long a partition that failed or was handed over is not claimed again: 2 s.
const REST: Duration = Duration::from_secs(2);

/// How many times publishing a notification is tried before the partition restarts from its
/// checkpoint.
const PUBLISH_ATTEMPTS: u32 = 3;

/// Settings of an [`Evaluator`]. Every setting states its default.
#[derive(Debug, Clone)]
#[must_use]
pub struct EvaluatorBuilder {
    subjects: Subjects,
    stream: String,
    lease_bucket: String,
    members_bucket: String,
    state_bucket: String,
    alerts_stream: String,
    alerts_prefix: Option<String>,
    consumer_prefix: String,
    ttl: Duration,
    timeout: Duration,
    duplicate_window: Duration,
    alerts_max_age: Duration,
    alerts_max_bytes: i64,
    max_checkpoint_bytes: usize,
    checkpoint_interval: Duration,
    tick_interval: Duration,
    batch: usize,
    max_unacked: usize,
    max_series: Option<usize>,
    rules: Vec<Rule>,
}

impl Default for EvaluatorBuilder {
    fn default() -> Self {
        EvaluatorBuilder {
            subjects: Subjects::default(),
            stream: DEFAULT_STREAM.to_owned(),
            lease_bucket: DEFAULT_EVALUATOR_BUCKET.to_owned(),
            members_bucket: DEFAULT_EVALUATOR_MEMBERS_BUCKET.to_owned(),
            state_bucket: DEFAULT_STATE_BUCKET.to_owned(),
            alerts_stream: DEFAULT_ALERTS_STREAM.to_owned(),
            alerts_prefix: None,
            consumer_prefix: "evaluator".to_owned(),
            ttl: DEFAULT_LEASE_TTL,
            timeout: DEFAULT_TIMEOUT,
            duplicate_window: DEFAULT_DUPLICATE_WINDOW,
            alerts_max_age: DEFAULT_MAX_AGE,
            alerts_max_bytes: DEFAULT_MAX_BYTES,
            max_checkpoint_bytes: DEFAULT_MAX_CHECKPOINT_BYTES,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            tick_interval: DEFAULT_TICK_INTERVAL,
            batch: DEFAULT_BATCH,
            max_unacked: DEFAULT_MAX_UNACKED,
            max_series: None,
            rules: Vec::new(),
        }
    }
}

impl EvaluatorBuilder {
    /// The subjects of the fleet (prefix and partition count): the same as the collectors'.
    /// Default: [`Subjects::default`].
    pub fn subjects(mut self, subjects: Subjects) -> Self {
        self.subjects = subjects;
        self
    }

    /// The stream of the records. Default: [`DEFAULT_STREAM`](crate::DEFAULT_STREAM).
    pub fn stream(mut self, name: impl Into<String>) -> Self {
        self.stream = name.into();
        self
    }

    /// The bucket of the partition leases. Default: [`DEFAULT_EVALUATOR_BUCKET`].
    pub fn lease_bucket(mut self, name: impl Into<String>) -> Self {
        self.lease_bucket = name.into();
        self
    }

    /// The bucket where evaluators announce themselves. Default:
    /// [`DEFAULT_EVALUATOR_MEMBERS_BUCKET`].
    pub fn members_bucket(mut self, name: impl Into<String>) -> Self {
        self.members_bucket = name.into();
        self
    }

    /// The bucket of the checkpoints. Default: [`DEFAULT_STATE_BUCKET`].
    pub fn state_bucket(mut self, name: impl Into<String>) -> Self {
        self.state_bucket = name.into();
        self
    }

    /// The stream the notifications are published to, created when missing. Default:
    /// [`DEFAULT_ALERTS_STREAM`].
    pub fn alerts_stream(mut self, name: impl Into<String>) -> Self {
        self.alerts_stream = name.into();
        self
    }

    /// The first token(s) of the notification subjects. Default: the records' prefix and
    /// `-alerts` (`wot-alerts`).
    pub fn alerts_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.alerts_prefix = Some(prefix.into());
        self
    }

    /// The start of the durable consumers' names, `<prefix>-p<k>`. Default: `evaluator`.
    pub fn consumer_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.consumer_prefix = prefix.into();
        self
    }

    /// The lease time of a partition. Default: [`DEFAULT_LEASE_TTL`](crate::DEFAULT_LEASE_TTL).
    /// Every evaluator must use the same.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The limit on each request to the server. Default: [`DEFAULT_TIMEOUT`](crate::DEFAULT_TIMEOUT).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The duplicate window of the notification stream (a notification sent again within it
    /// is stored once). Default: [`DEFAULT_DUPLICATE_WINDOW`](crate::DEFAULT_DUPLICATE_WINDOW).
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    /// The limit on one checkpoint, in bytes. Default: [`DEFAULT_MAX_CHECKPOINT_BYTES`].
    ///
    /// A checkpoint is the whole state of a partition: about 420 bytes per (rule, Thing)
    /// series with a firing alert, so about 2,000 of them at the default. Choose the fleet's
    /// partition count so that no partition holds more, or raise this together with the
    /// server's `max_payload`. The bucket keeps the limit of the evaluator that created it.
    pub fn max_checkpoint_bytes(mut self, bytes: usize) -> Self {
        self.max_checkpoint_bytes = bytes;
        self
    }

    /// How often a partition with new records writes its checkpoint (and then acknowledges
    /// them). Default: [`DEFAULT_CHECKPOINT_INTERVAL`].
    pub fn checkpoint_interval(mut self, interval: Duration) -> Self {
        self.checkpoint_interval = interval;
        self
    }

    /// How often hold times, no-data deadlines and repeats are evaluated on the wall clock.
    /// Default: [`DEFAULT_TICK_INTERVAL`].
    pub fn tick_interval(mut self, interval: Duration) -> Self {
        self.tick_interval = interval;
        self
    }

    /// Records taken from a consumer at once. Default: [`DEFAULT_BATCH`].
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n;
        self
    }

    /// Records processed and not acknowledged that make a checkpoint be written at once.
    /// Default: [`DEFAULT_MAX_UNACKED`].
    pub fn max_unacked(mut self, n: usize) -> Self {
        self.max_unacked = n;
        self
    }

    /// The most (rule, Thing) series one partition's engine keeps (see
    /// `wot_alerts::Engine::with_series_limit`). Default: the engine's.
    pub fn max_series(mut self, n: usize) -> Self {
        self.max_series = Some(n);
        self
    }

    /// Adds a rule. Every evaluator of a fleet must have the same rules.
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Adds rules.
    pub fn rules(mut self, rules: impl IntoIterator<Item = Rule>) -> Self {
        self.rules.extend(rules);
        self
    }

    /// Checks the settings and rules, opens the buckets, creates or checks the notification
    /// stream, and starts the evaluator named `name` (unique in the fleet) on a task of its
    /// own. It claims its first partitions within one round (a third of the lease time).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for settings out of range or a rule id
    /// over [`MAX_NAME_LEN`] bytes; [`ErrorKind::Alert`](crate::ErrorKind::Alert) for a rule
    /// the engine refuses; [`ErrorKind::KeyValue`](crate::ErrorKind::KeyValue) or
    /// [`ErrorKind::Stream`](crate::ErrorKind::Stream) when a bucket or stream cannot be
    /// created, has other settings, or (the records' stream) does not exist;
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) when the server does not answer.
    pub async fn start(
        self,
        client: async_nats::Client,
        name: impl Into<String>,
    ) -> Result<Evaluator, Error> {
        let name = name.into();
        if self.batch == 0
            || self.max_unacked == 0
            || self.checkpoint_interval.is_zero()
            || self.tick_interval.is_zero()
            || self.max_checkpoint_bytes < 1024
            || self.max_checkpoint_bytes > i32::MAX as usize
        {
            return Err(Error::config(
                "batch and max_unacked must be at least 1, the intervals not zero, max_checkpoint_bytes at least 1024",
            ));
        }
        let consumer_ok = !self.consumer_prefix.is_empty()
            && self.consumer_prefix.len() <= 64
            && self
                .consumer_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !consumer_ok {
            return Err(Error::config(
                "the consumer prefix must be 1 to 64 letters, digits, `-` or `_`",
            ));
        }
        let alerts_prefix = self
            .alerts_prefix
            .clone()
            .unwrap_or_else(|| format!("{}-alerts", self.subjects.prefix()));
        // The same rules as the records' prefix.
        Subjects::new(&alerts_prefix, 1)?;
        for rule in &self.rules {
            if rule.id.len() > MAX_NAME_LEN {
                return Err(Error::too_long("rule id", rule.id.len(), MAX_NAME_LEN));
            }
        }
        // The rules must load into an engine: checked once here, not in each partition.
        new_engine(&self.rules, self.max_series, SystemTime::now())?;

        let leases = Leases::builder()
            .bucket(self.lease_bucket.clone())
            .members_bucket(self.members_bucket.clone())
            .ttl(self.ttl)
            .timeout(self.timeout)
            .open(client.clone(), name.clone())
            .await?;
        let js = jetstream::ContextBuilder::new()
            .timeout(self.timeout)
            .build(client);
        let state_kv = ensure_bucket(
            &js,
            &self.state_bucket,
            Duration::ZERO,
            // Checked by the range test above.
            i32::try_from(self.max_checkpoint_bytes).unwrap_or(i32::MAX),
            -1,
        )
        .await?;
        if let Err(e) = js.get_stream(&self.stream).await {
            return Err(stream_error(
                &self.stream,
                "reading the records' stream (a publisher creates it)",
                e,
                self.timeout,
            ));
        }
        ensure_alerts_stream(&js, &self, &alerts_prefix).await?;

        let shared = Arc::new(Shared {
            name,
            js,
            state_kv,
            leases,
            alerts_prefix,
            stats: Stats::default(),
            routes: Mutex::new(BTreeMap::new()),
            settings: self,
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(run(Arc::clone(&shared), stop_rx));
        Ok(Evaluator {
            shared,
            task: Some(task),
            stop: Some(stop_tx),
        })
    }
}

/// Creates the notification stream or checks the one there (as
/// [`Publisher::ensure_stream`](crate::Publisher::ensure_stream) does for records).
async fn ensure_alerts_stream(
    js: &jetstream::Context,
    settings: &EvaluatorBuilder,
    prefix: &str,
) -> Result<(), Error> {
    let name = &settings.alerts_stream;
    let wanted = format!("{prefix}.>");
    let config = match js.get_stream(name).await {
        Ok(s) => s.cached_info().config.clone(),
        Err(e) => match e.kind() {
            jetstream::context::GetStreamErrorKind::JetStream(j)
                if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
            {
                let create = stream::Config {
                    name: name.clone(),
                    subjects: vec![wanted.clone()],
                    duplicate_window: settings.duplicate_window,
                    max_age: settings.alerts_max_age,
                    max_bytes: settings.alerts_max_bytes,
                    storage: stream::StorageType::File,
                    retention: stream::RetentionPolicy::Limits,
                    discard: stream::DiscardPolicy::Old,
                    ..Default::default()
                };
                match js.create_stream(create).await {
                    Ok(s) => {
                        tracing::info!(stream = %name, subjects = %wanted, "created the notification stream");
                        s.cached_info().config.clone()
                    }
                    // Another evaluator may have created it at the same time.
                    Err(create_error) => match js.get_stream(name).await {
                        Ok(s) => s.cached_info().config.clone(),
                        Err(_) => {
                            return Err(stream_error(
                                name,
                                "creating the stream",
                                create_error,
                                settings.timeout,
                            ));
                        }
                    },
                }
            }
            _ => {
                return Err(stream_error(
                    name,
                    "reading the stream",
                    e,
                    settings.timeout,
                ));
            }
        },
    };
    if !config.subjects.contains(&wanted) {
        return Err(Error::stream(
            name,
            format!(
                "takes subjects {:?}, not {wanted:?}",
                config.subjects.iter().take(8).collect::<Vec<_>>()
            ),
            None,
        ));
    }
    if config.duplicate_window != settings.duplicate_window {
        return Err(Error::stream(
            name,
            format!(
                "has a duplicate window of {:?}, not {:?}",
                config.duplicate_window, settings.duplicate_window
            ),
            None,
        ));
    }
    Ok(())
}

fn stream_error(
    stream: &str,
    what: &str,
    e: impl std::error::Error + Send + Sync + 'static,
    timeout: Duration,
) -> Error {
    if e.to_string().contains("timed out") {
        return Error::new(Repr::Timeout {
            what: format!("{what} {stream}"),
            after: timeout,
        });
    }
    Error::stream(stream, what, Some(Box::new(e)))
}

fn alert_error(e: &impl std::fmt::Display) -> Error {
    Error::new(Repr::Alert(e.to_string()))
}

fn new_engine(rules: &[Rule], max_series: Option<usize>, now: SystemTime) -> Result<Engine, Error> {
    let mut engine = Engine::new();
    if let Some(n) = max_series {
        engine = engine.with_series_limit(n);
    }
    for rule in rules {
        engine
            .add_rule(rule.clone(), now)
            .map_err(|e| alert_error(&e))?;
    }
    Ok(engine)
}

/// Counters of an [`Evaluator`], from [`Evaluator::stats`]: totals since it started, over all
/// the partitions it held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EvaluatorStats {
    /// Records read from the partitions' consumers (redeliveries of records already
    /// processed not counted).
    pub records: u64,
    /// Records that were not JSON of the record schema or of another version: acknowledged,
    /// logged and skipped.
    pub bad_records: u64,
    /// Notifications published (duplicates dropped by the stream included).
    pub notifications: u64,
    /// Notifications the stream dropped as duplicates: made again after a takeover, or sent
    /// again after a lost acknowledgement.
    pub duplicates: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Partitions started from a checkpoint.
    pub restored: u64,
    /// Checkpoints found that could not be read (garbage, too large, another version): the
    /// partition started from empty state.
    pub bad_checkpoints: u64,
}

#[derive(Default)]
struct Stats {
    records: AtomicU64,
    bad_records: AtomicU64,
    notifications: AtomicU64,
    duplicates: AtomicU64,
    checkpoints: AtomicU64,
    restored: AtomicU64,
    bad_checkpoints: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

struct Shared {
    name: String,
    js: jetstream::Context,
    state_kv: kv::Store,
    leases: Leases,
    alerts_prefix: String,
    stats: Stats,
    routes: Mutex<BTreeMap<u16, mpsc::Sender<Command>>>,
    settings: EvaluatorBuilder,
}

impl Shared {
    fn routes(&self) -> std::sync::MutexGuard<'_, BTreeMap<u16, mpsc::Sender<Command>>> {
        // A poisoned lock only means a task panicked while holding it; the map is still whole.
        self.routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

enum Command {
    Acknowledge {
        rule: String,
        thing: String,
        by: String,
        comment: Option<String>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Silence {
        silence: Silence,
        reply: oneshot::Sender<Result<SilenceId, Error>>,
    },
    Unsilence {
        id: SilenceId,
        reply: oneshot::Sender<Result<bool, Error>>,
    },
    Alerts {
        reply: oneshot::Sender<Vec<Alert>>,
    },
    Stop {
        reply: oneshot::Sender<()>,
    },
}

/// Evaluates alert rules over the property records of the partitions it holds, as one of
/// several processes that share them, and publishes the notifications.
///
/// # Partitions and leases
///
/// Records are published on `<prefix>.p<k>.<thing>.…` where `k` is the Thing's
/// [`partition`](crate::partition). An evaluator claims partition `k` with a lease (key
/// `p<k>` in the bucket [`DEFAULT_EVALUATOR_BUCKET`], the same lease rules as
/// [`Leases`]: claim = create, renew every third of the lease time with compare-and-set, a
/// lease not renewed expires after the lease time). Evaluators announce themselves in
/// [`DEFAULT_EVALUATOR_MEMBERS_BUCKET`] and each holds a fair share,
/// ceil(partitions / evaluators): one holding more hands the rest over (checkpoint, ack,
/// release); one holding less claims partitions no lease is on. A dead evaluator's leases
/// expire after the lease time and the others claim its partitions in their next round.
///
/// Each held partition is read by the durable pull consumer `<consumer prefix>-p<k>` on the
/// records' stream, filter `<prefix>.p<k>.>`, explicit acks, so each Thing's records reach one
/// evaluator, in order. Property records go to the partition's own
/// [`wot_alerts::Engine`] with the record's `received_at` as the engine's time; events and
/// connection changes are acknowledged and skipped. A record that is not JSON of the record
/// schema, or of another version, is acknowledged, counted
/// ([`EvaluatorStats::bad_records`]) and logged. Hold times, no-data deadlines and repeats are
/// evaluated every [`tick_interval`](EvaluatorBuilder::tick_interval) on this process's wall
/// clock.
///
/// # Checkpoints
///
/// Key `p<k>` of [`DEFAULT_STATE_BUCKET`] holds the partition's [`Checkpoint`]: the engine's
/// [`EngineState`] and the stream sequence of the last record it covers. It is written every
/// [`checkpoint_interval`](EvaluatorBuilder::checkpoint_interval) while records come (sooner
/// after [`max_unacked`](EvaluatorBuilder::max_unacked) records, at once after an
/// acknowledgement or silence), with compare-and-set on the key's revision, and **records are
/// acknowledged only after the checkpoint that covers them is written**; notifications are
/// published (and acknowledged by the stream) before the checkpoint.
///
/// An evaluator that claims a partition reads its checkpoint, restores the engine from it
/// (at the checkpoint's engine time, so that records processed again give the same alerts),
/// recreates the partition's consumer to start right after the checkpoint's sequence, and
/// writes the checkpoint back at once (so a previous holder still running can no longer
/// write it). A partition without a checkpoint starts at the consumer's acknowledged floor if
/// the consumer exists, else with the records published from then on. **A checkpoint that is
/// garbage, larger than [`max_checkpoint_bytes`](EvaluatorBuilder::max_checkpoint_bytes) or of
/// another version is not used**: the partition starts from empty state (no pending or firing
/// alerts, acknowledgements or silences) with a warning, counted in
/// [`EvaluatorStats::bad_checkpoints`].
///
/// # Notifications
///
/// Every notification of the engine (`fired`, `resolved`, `severity_changed`,
/// `acknowledged`) is published to `<alerts prefix>.<thing>.<rule>` (Thing id and rule id as
/// one [token](crate::encode_token) each; the prefix is `wot-alerts` by default) in the stream
/// [`DEFAULT_ALERTS_STREAM`] (created when missing, or checked as
/// [`Publisher::ensure_stream`](crate::Publisher::ensure_stream) checks the records' stream),
/// as an [`AlertMessage`] in JSON, with a `Nats-Msg-Id` made from the partition's epoch, the
/// rule, the Thing, the alert id and the kind ([`AlertMessage::id`]). Records processed again
/// after a takeover give the same alerts with the same ids, so their notifications are
/// dropped by the stream's duplicate window: each is stored once.
///
/// # Time
///
/// A property record is evaluated at its `received_at` (the collector's clock when the value
/// arrived; at most [`MAX_RECORD_TIME_AHEAD`] ahead of this process's clock), so records
/// evaluated again after a takeover give the same alerts. Hold times (`for`),
/// `keep_firing_for`, repeats and no-data deadlines are run by a tick every
/// [`tick_interval`](EvaluatorBuilder::tick_interval) at this process's wall clock; the
/// engine's time never goes back (the later of the two counts). A restored partition
/// continues at the checkpoint's engine time.
///
/// Alert ids come from the order in which the engine creates alerts. Alerts created by
/// records (every condition on values, pending ones included) get the same ids when the
/// records are evaluated again; a `no_data` alert is created by a tick, so after a takeover
/// it may get another id, and its notifications may then be stored twice.
///
/// # Failures
///
/// | failure | what happens |
/// |---|---|
/// | evaluator killed | its leases expire after the lease time; the others claim its partitions in their next round, restore the checkpoints and evaluate again the records after them; notifications made again are dropped by the stream's duplicate window (they must come within it: 2 min by default) |
/// | a notification cannot be published (3 attempts) or a checkpoint cannot be written | the partition stops, without acknowledging; its lease is released and it is claimed again (by any evaluator) from its last checkpoint |
/// | lease lost, or not renewed until it runs out | the partition stops at once without writing (its next holder owns the checkpoint); a write that comes late fails on the key's revision, since the next holder writes the checkpoint back when it claims |
/// | a record that is not JSON of the record schema or of another version | acknowledged with the others, counted in [`EvaluatorStats::bad_records`], logged |
/// | a checkpoint that is garbage, too large, of another version or of another partition | the partition starts from empty state, with a warning, counted in [`EvaluatorStats::bad_checkpoints`]; the next checkpoint replaces it |
/// | the state grows past [`max_checkpoint_bytes`](EvaluatorBuilder::max_checkpoint_bytes) | the checkpoint is not written ([`ErrorKind::TooLong`](crate::ErrorKind::TooLong)): the partition stops and starts again from its last checkpoint; bound the state with [`max_series`](EvaluatorBuilder::max_series) |
///
/// # Stopping
///
/// [`stop`](Self::stop) checkpoints and acknowledges every held partition, releases its leases
/// and withdraws: the others take the partitions over in their next round. Dropping the
/// evaluator stops its tasks at once without any of that (as a crash would): its partitions
/// are taken over after the lease time, from their last checkpoints.
pub struct Evaluator {
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
    stop: Option<oneshot::Sender<oneshot::Sender<()>>>,
}

impl std::fmt::Debug for Evaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evaluator")
            .field("name", &self.shared.name)
            .field("partitions", &self.partitions())
            .finish_non_exhaustive()
    }
}

impl Drop for Evaluator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Evaluator {
    /// Settings, all at their defaults, and no rules.
    pub fn builder() -> EvaluatorBuilder {
        EvaluatorBuilder::default()
    }

    /// This evaluator's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The partitions it holds and evaluates now (checkpoint restored, consumer open), in
    /// order.
    pub fn partitions(&self) -> Vec<u16> {
        self.shared.routes().keys().copied().collect()
    }

    /// The counters.
    pub fn stats(&self) -> EvaluatorStats {
        let s = &self.shared.stats;
        EvaluatorStats {
            records: s.records.load(Ordering::Relaxed),
            bad_records: s.bad_records.load(Ordering::Relaxed),
            notifications: s.notifications.load(Ordering::Relaxed),
            duplicates: s.duplicates.load(Ordering::Relaxed),
            checkpoints: s.checkpoints.load(Ordering::Relaxed),
            restored: s.restored.load(Ordering::Relaxed),
            bad_checkpoints: s.bad_checkpoints.load(Ordering::Relaxed),
        }
    }

    fn route(&self, thing: &str) -> Result<mpsc::Sender<Command>, Error> {
        let k = self.shared.settings.subjects.partition_of(thing);
        self.shared
            .routes()
            .get(&k)
            .cloned()
            .ok_or_else(|| Error::new(Repr::NotHeld(k)))
    }

    async fn ask<T>(
        &self,
        thing: &str,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, Error> {
        let k = self.shared.settings.subjects.partition_of(thing);
        let sender = self.route(thing)?;
        let (reply, answer) = oneshot::channel();
        if sender.send(command(reply)).await.is_err() {
            return Err(Error::new(Repr::NotHeld(k)));
        }
        answer.await.map_err(|_| Error::new(Repr::NotHeld(k)))
    }

    /// Acknowledges the firing alert of `rule` for `thing` in the engine of the Thing's
    /// partition, publishes the `acknowledged` notification and writes the checkpoint before
    /// returning: the acknowledgement survives a takeover.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotHeld`](crate::ErrorKind::NotHeld) when this evaluator does not hold the
    /// Thing's partition (ask the one that does); [`ErrorKind::Alert`](crate::ErrorKind::Alert)
    /// when there is no firing alert; an error of the checkpoint or the publish otherwise (the
    /// partition then restarts from its last checkpoint, without the acknowledgement).
    pub async fn acknowledge(
        &self,
        rule: &str,
        thing: &str,
        by: impl Into<String>,
        comment: Option<String>,
    ) -> Result<(), Error> {
        let (rule, thing2, by) = (rule.to_owned(), thing.to_owned(), by.into());
        self.ask(thing, |reply| Command::Acknowledge {
            rule,
            thing: thing2,
            by,
            comment,
            reply,
        })
        .await?
    }

    /// Adds a silence for one Thing (`silence.thing` must be set: a silence lives in the
    /// engine of that Thing's partition) and writes the checkpoint before returning.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for a silence without a Thing;
    /// otherwise as [`acknowledge`](Self::acknowledge).
    pub async fn add_silence(&self, silence: Silence) -> Result<SilenceId, Error> {
        let Some(thing) = silence.thing.clone() else {
            return Err(Error::config(
                "an evaluator's silence must name a Thing (it lives in that Thing's partition)",
            ));
        };
        self.ask(&thing, |reply| Command::Silence { silence, reply })
            .await?
    }

    /// Removes silence `id` of the partition of `thing`, and writes the checkpoint: `false`
    /// when there was no such silence.
    ///
    /// # Errors
    ///
    /// As [`acknowledge`](Self::acknowledge).
    pub async fn remove_silence(&self, thing: &str, id: SilenceId) -> Result<bool, Error> {
        self.ask(thing, |reply| Command::Unsilence { id, reply })
            .await?
    }

    /// The pending and firing alerts of every partition held now.
    pub async fn active_alerts(&self) -> Vec<Alert> {
        let senders: Vec<_> = self.shared.routes().values().cloned().collect();
        let mut all = Vec::new();
        for sender in senders {
            let (reply, answer) = oneshot::channel();
            if sender.send(Command::Alerts { reply }).await.is_ok()
                && let Ok(alerts) = answer.await
            {
                all.extend(alerts);
            }
        }
        all
    }

    /// Stops cleanly: every held partition writes its checkpoint and acknowledges its records,
    /// its lease is released, and the evaluator withdraws its announcement, so the others take
    /// the partitions over in their next round.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let (done, finished) = oneshot::channel();
            if stop.send(done).is_ok() {
                let _ = finished.await;
            }
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// A task aborted when dropped: a dropped evaluator leaves no partition running.
struct AbortOnDrop(tokio::task::JoinHandle<Result<(), Error>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Held {
    lease: Lease,
    valid_until: watch::Sender<Instant>,
    commands: mpsc::Sender<Command>,
    task: AbortOnDrop,
}

fn key(k: u16) -> String {
    format!("p{k}")
}

/// The evaluator's rounds: announce, renew, hand over, claim.
async fn run(shared: Arc<Shared>, mut stop: oneshot::Receiver<oneshot::Sender<()>>) {
    let mut held: BTreeMap<u16, Held> = BTreeMap::new();
    let mut resting: HashMap<u16, Instant> = HashMap::new();
    let mut rounds = tokio::time::interval(shared.leases.renew_interval());
    rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = rounds.tick() => round(&shared, &mut held, &mut resting).await,
            done = &mut stop => {
                for (k, h) in std::mem::take(&mut held) {
                    hand_over(&shared, k, h).await;
                }
                if let Err(e) = shared.leases.withdraw().await {
                    tracing::warn!(evaluator = %shared.name, "withdrawing: {e}");
                }
                if let Ok(done) = done {
                    let _ = done.send(());
                }
                return;
            }
        }
    }
}

/// Stops partition `k` cleanly (checkpoint, acks) and releases its lease.
async fn hand_over(shared: &Shared, k: u16, h: Held) {
    shared.routes().remove(&k);
    let (reply, stopped) = oneshot::channel();
    if h.commands.send(Command::Stop { reply }).await.is_ok() {
        let wait = shared.leases.ttl();
        if tokio::time::timeout(wait, stopped).await.is_err() {
            tracing::warn!(partition = k, "the partition did not stop in time");
        }
    }
    drop(h.task);
    if let Err(e) = shared.leases.release(h.lease).await {
        tracing::warn!(partition = k, "releasing: {e}");
    }
}

async fn round(
    shared: &Arc<Shared>,
    held: &mut BTreeMap<u16, Held>,
    resting: &mut HashMap<u16, Instant>,
) {
    let now = Instant::now();
    resting.retain(|_, until| *until > now);
    if let Err(e) = shared.leases.announce().await {
        tracing::warn!(evaluator = %shared.name, "announcing: {e}");
    }
    // Partitions whose task ended (an error, or a checkpoint it could not write): released,
    // and claimed again after a rest, from their last checkpoint.
    let ended: Vec<u16> = held
        .iter()
        .filter(|(_, h)| h.task.0.is_finished())
        .map(|(k, _)| *k)
        .collect();
    for k in ended {
        if let Some(h) = held.remove(&k) {
            shared.routes().remove(&k);
            tracing::info!(partition = k, "the partition's evaluation ended; released");
            if let Err(e) = shared.leases.release(h.lease).await {
                tracing::warn!(partition = k, "releasing: {e}");
            }
            resting.insert(k, now + REST);
        }
    }
    // Renew; a lease lost or not renewed in time stops its partition at once, without a
    // checkpoint (the next holder owns it).
    let keys: Vec<u16> = held.keys().copied().collect();
    for k in keys {
        let Some(h) = held.get_mut(&k) else { continue };
        let lost = match shared.leases.renew(&mut h.lease).await {
            Ok(LeaseStatus::Held) => {
                let _ = h.valid_until.send(h.lease.valid_until());
                false
            }
            Ok(LeaseStatus::Lost) => true,
            Err(e) => {
                tracing::warn!(partition = k, "renewing: {e}");
                Instant::now() >= h.lease.valid_until()
            }
        };
        if lost {
            tracing::warn!(partition = k, "lease lost: evaluation stopped");
            shared.routes().remove(&k);
            held.remove(&k);
        }
    }
    let partitions = shared.settings.subjects.partitions();
    let members = match shared.leases.members().await {
        Ok(m) => m.len().max(1),
        Err(e) => {
            tracing::warn!("listing evaluators: {e}");
            return;
        }
    };
    let share = usize::from(partitions).div_ceil(members);
    // Hand over the partitions beyond the share, the last claimed first.
    while held.len() > share {
        let Some((&k, _)) = held.iter().next_back() else {
            break;
        };
        if let Some(h) = held.remove(&k) {
            tracing::info!(partition = k, share, "handing over");
            hand_over(shared, k, h).await;
            resting.insert(k, Instant::now() + shared.leases.ttl());
        }
    }
    if held.len() >= share {
        return;
    }
    let leased = match shared.leases.leased(usize::from(partitions)).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("listing partition leases: {e}");
            return;
        }
    };
    // From this evaluator's own place, so that evaluators starting together collide less.
    let start = (fnv(shared.name.as_bytes()) % u64::from(partitions)) as u16;
    for i in 0..partitions {
        if held.len() >= share {
            break;
        }
        let k = (start + i) % partitions;
        if held.contains_key(&k) || resting.contains_key(&k) || leased.contains(&key(k)) {
            continue;
        }
        match shared.leases.claim(&key(k)).await {
            Ok(Some(lease)) => {
                tracing::info!(evaluator = %shared.name, partition = k, "claimed");
                let (valid_tx, valid_rx) = watch::channel(lease.valid_until());
                let (commands, inbox) = mpsc::channel(16);
                // The partition's task puts itself in the routes once it reads records.
                let task = tokio::spawn(evaluate_partition(
                    Arc::clone(shared),
                    k,
                    (commands.clone(), inbox),
                    valid_rx,
                ));
                held.insert(
                    k,
                    Held {
                        lease,
                        valid_until: valid_tx,
                        commands,
                        task: AbortOnDrop(task),
                    },
                );
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(partition = k, "claiming: {e}");
                break;
            }
        }
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A random number for a new partition epoch.
fn random_epoch() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// A partition's saved state: the JSON value of key `p<k>` in the state bucket.
///
/// | field | JSON type | meaning |
/// |---|---|---|
/// | `v` | number | [`CHECKPOINT_VERSION`], `1` |
/// | `partition` | number | the partition |
/// | `seq` | number | the stream sequence of the last record the state covers (0: none) |
/// | `epoch` | string | 16 hex digits: chosen when the partition started from empty state, kept across takeovers; part of the notification ids |
/// | `holder` | string | the evaluator that wrote it |
/// | `state` | object | the engine's [`EngineState`] (wot-alerts' own versioned form) |
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Checkpoint {
    /// The partition.
    pub partition: u16,
    /// The stream sequence of the last record the state covers.
    pub sequence: u64,
    /// The partition's epoch.
    pub epoch: u64,
    /// The evaluator that wrote it.
    pub holder: String,
    /// The engine state.
    pub state: EngineState,
}

#[derive(Serialize, Deserialize)]
struct CheckpointWire {
    v: u32,
    partition: u16,
    seq: u64,
    epoch: String,
    holder: String,
    state: EngineState,
}

impl Checkpoint {
    /// The checkpoint as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        let wire = CheckpointWire {
            v: CHECKPOINT_VERSION,
            partition: self.partition,
            seq: self.sequence,
            epoch: format!("{:016x}", self.epoch),
            holder: self.holder.clone(),
            state: self.state.clone(),
        };
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// Reads a checkpoint, refusing more than `max_bytes` bytes before parsing anything, then
    /// another version (of the checkpoint or of the engine state in it) before reading the
    /// rest.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::TooLong`](crate::ErrorKind::TooLong),
    /// [`ErrorKind::Version`](crate::ErrorKind::Version), or
    /// [`ErrorKind::Decode`](crate::ErrorKind::Decode) for anything else that is not a
    /// checkpoint.
    pub fn from_json(bytes: &[u8], max_bytes: usize) -> Result<Checkpoint, Error> {
        if bytes.len() > max_bytes {
            return Err(Error::too_long(
                "alert state checkpoint",
                bytes.len(),
                max_bytes,
            ));
        }
        #[derive(Deserialize)]
        struct Versions {
            v: Option<u64>,
            state: Option<StateVersion>,
        }
        #[derive(Deserialize)]
        struct StateVersion {
            version: Option<u64>,
        }
        let decode = |e: serde_json::Error| Error::new(Repr::CheckpointDecode(e.to_string()));
        let versions: Versions = serde_json::from_slice(bytes).map_err(decode)?;
        match versions.v {
            Some(v) if v == u64::from(CHECKPOINT_VERSION) => {}
            Some(found) => {
                return Err(Error::new(Repr::CheckpointVersion {
                    found,
                    supported: CHECKPOINT_VERSION,
                }));
            }
            None => return Err(Error::new(Repr::CheckpointDecode("no `v` field".into()))),
        }
        if let Some(found) = versions.state.and_then(|s| s.version)
            && found != u64::from(wot_alerts::ENGINE_STATE_VERSION)
        {
            return Err(Error::new(Repr::CheckpointDecode(format!(
                "its engine state is of version {found}, this build reads {}",
                wot_alerts::ENGINE_STATE_VERSION
            ))));
        }
        let wire: CheckpointWire = serde_json::from_slice(bytes).map_err(decode)?;
        let epoch = u64::from_str_radix(&wire.epoch, 16)
            .ok()
            .filter(|_| wire.epoch.len() == 16)
            .ok_or_else(|| {
                Error::new(Repr::CheckpointDecode(
                    "`epoch` is not 16 hex digits".into(),
                ))
            })?;
        Ok(Checkpoint {
            partition: wire.partition,
            sequence: wire.seq,
            epoch,
            holder: wire.holder,
            state: wire.state,
        })
    }
}

/// A notification as published on `<alerts prefix>.<thing>.<rule>`: JSON, `"v": 1`. Times
/// are RFC 3339 UTC to the millisecond. Readers should ignore fields they do not know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AlertMessage {
    /// [`ALERT_MESSAGE_VERSION`].
    pub v: u32,
    /// The notification's id, also its `Nats-Msg-Id`: `n.` and 48 hex digits of the SHA-256
    /// of the partition's epoch, the partition, the rule, the Thing, the alert id, the kind,
    /// the repeat count, the severity and (for `acknowledged`) the acknowledgement's time. The
    /// same notification made again after a takeover has the same id.
    pub id: String,
    /// `fired`, `severity_changed`, `resolved` or `acknowledged`.
    pub kind: String,
    /// The Thing's partition.
    pub partition: u16,
    /// The alert's id, unique within the partition's epoch.
    pub alert_id: u64,
    /// The rule's id.
    pub rule: String,
    /// The Thing's id.
    pub thing: String,
    /// The property.
    pub property: String,
    /// `pending`, `firing` or `resolved`.
    pub state: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// For `severity_changed`, the severity before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_severity: Option<String>,
    /// For a repeated `fired`, the repeat count; else 0.
    #[serde(default)]
    pub repeat: u32,
    /// The latest value of the property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    /// The property's unit, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The rendered summary.
    pub summary: String,
    /// The labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// When (the engine's time).
    pub at: String,
    /// When the condition started holding.
    pub active_since: String,
    /// When the alert started firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_at: Option<String>,
    /// When it resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
    /// Who acknowledged it, when, why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    /// When it was acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<String>,
    /// The acknowledgement's comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledgement_comment: Option<String>,
}

impl AlertMessage {
    /// The message as JSON, at most [`MAX_ALERT_MESSAGE_BYTES`]: when longer, without the
    /// value and with the summary cut to 1 KiB.
    fn to_json(&self) -> Result<Vec<u8>, Error> {
        let encode = |m: &AlertMessage| {
            serde_json::to_vec(m).map_err(|e| Error::new(Repr::Encode(e.to_string())))
        };
        let bytes = encode(self)?;
        if bytes.len() <= MAX_ALERT_MESSAGE_BYTES {
            return Ok(bytes);
        }
        let mut short = self.clone();
        short.value = None;
        let mut end = short.summary.len().min(1024);
        while !short.summary.is_char_boundary(end) {
            end -= 1;
        }
        short.summary.truncate(end);
        short.labels.retain(|k, v| k.len() + v.len() <= 256);
        tracing::warn!(rule = %short.rule, "a notification too long: sent without the value");
        encode(&short)
    }
}

fn rfc3339(t: SystemTime) -> String {
    // Times before 1970 (which the engine does not make) are written as the epoch.
    let t = t.max(SystemTime::UNIX_EPOCH);
    humantime::format_rfc3339_millis(t).to_string()
}

fn nanos(t: SystemTime) -> u128 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

impl AlertMessage {
    fn new(epoch: u64, partition: u16, n: &wot_alerts::Notification) -> AlertMessage {
        let alert = &n.alert;
        let ack = alert.acknowledgement.as_ref();
        let mut hash = Sha256::new();
        let mut part = |bytes: &[u8]| {
            hash.update((bytes.len() as u64).to_be_bytes());
            hash.update(bytes);
        };
        part(&epoch.to_be_bytes());
        part(&partition.to_be_bytes());
        part(alert.rule.as_bytes());
        part(alert.thing.as_bytes());
        part(&alert.id.to_be_bytes());
        part(n.kind.as_str().as_bytes());
        part(&n.repeat.to_be_bytes());
        part(alert.severity.as_str().as_bytes());
        if n.kind == NotificationKind::Acknowledged {
            part(&ack.map_or(0, |a| nanos(a.at)).to_be_bytes());
        }
        let digest = hash.finalize();
        let mut id = String::with_capacity(50);
        id.push_str("n.");
        for b in digest.iter().take(24) {
            use std::fmt::Write as _;
            let _ = write!(id, "{b:02x}");
        }
        AlertMessage {
            v: ALERT_MESSAGE_VERSION,
            id,
            kind: n.kind.as_str().to_owned(),
            partition,
            alert_id: alert.id,
            rule: alert.rule.clone(),
            thing: alert.thing.clone(),
            property: alert.property.clone(),
            state: alert.state.as_str().to_owned(),
            severity: alert.severity.as_str().to_owned(),
            previous_severity: n.previous_severity.map(|s| s.as_str().to_owned()),
            repeat: n.repeat,
            value: alert.value.clone(),
            unit: n.unit.clone(),
            summary: alert.summary.clone(),
            labels: alert.labels.clone(),
            at: rfc3339(n.at),
            active_since: rfc3339(alert.active_since),
            fired_at: alert.fired_at.map(rfc3339),
            resolved_at: alert.resolved_at.map(rfc3339),
            acknowledged_by: ack.map(|a| a.by.clone()),
            acknowledged_at: ack.map(|a| rfc3339(a.at)),
            acknowledgement_comment: ack.and_then(|a| a.comment.clone()),
        }
    }
}

/// The subject of a notification about `rule` for `thing`: `<prefix>.<thing>.<rule>`.
fn alert_subject(prefix: &str, thing: &str, rule: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + thing.len() * 3 + rule.len() * 3 + 2);
    s.push_str(prefix);
    s.push('.');
    encode_token(thing, &mut s);
    s.push('.');
    encode_token(rule, &mut s);
    s
}

/// Takes a partition's route out when its task ends or is aborted.
struct Route {
    shared: Arc<Shared>,
    k: u16,
    commands: mpsc::Sender<Command>,
}

impl Drop for Route {
    fn drop(&mut self) {
        let mut routes = self.shared.routes();
        if routes
            .get(&self.k)
            .is_some_and(|s| s.same_channel(&self.commands))
        {
            routes.remove(&self.k);
        }
    }
}

/// One held partition: its engine, consumer and checkpoint.
struct Partition {
    shared: Arc<Shared>,
    k: u16,
    key: String,
    engine: Engine,
    epoch: u64,
    /// The stream sequence of the last record processed.
    last_seq: u64,
    /// The stream sequence the last checkpoint written covers.
    covered: u64,
    /// The revision of the checkpoint key this partition wrote last.
    revision: u64,
    /// Processed records waiting for the checkpoint that covers them.
    unacked: Vec<jetstream::Message>,
    /// The engine changed without records (a tick, an acknowledgement).
    dirty: bool,
    valid_until: watch::Receiver<Instant>,
}

async fn evaluate_partition(
    shared: Arc<Shared>,
    k: u16,
    (commands, mut inbox): (mpsc::Sender<Command>, mpsc::Receiver<Command>),
    valid_until: watch::Receiver<Instant>,
) -> Result<(), Error> {
    let result = evaluate_partition_inner(shared, k, commands, &mut inbox, valid_until).await;
    if let Err(e) = &result {
        tracing::warn!(partition = k, "partition evaluation stopped: {e}");
    }
    result
}

async fn evaluate_partition_inner(
    shared: Arc<Shared>,
    k: u16,
    commands: mpsc::Sender<Command>,
    inbox: &mut mpsc::Receiver<Command>,
    valid_until: watch::Receiver<Instant>,
) -> Result<(), Error> {
    let settings = &shared.settings;
    let consumer_name = format!("{}-p{k}", settings.consumer_prefix);
    let key = key(k);
    let (mut partition, start) =
        open_partition(&shared, k, &key, &consumer_name, valid_until).await?;

    let records =
        shared.js.get_stream(&settings.stream).await.map_err(|e| {
            stream_error(&settings.stream, "reading the stream", e, settings.timeout)
        })?;
    if records.consumer_info(&consumer_name).await.is_ok() {
        let _ = records.delete_consumer(&consumer_name).await;
    }
    let consumer: consumer::PullConsumer = records
        .create_consumer(consumer::pull::Config {
            durable_name: Some(consumer_name.clone()),
            filter_subject: settings.subjects.partition_filter(k),
            ack_policy: consumer::AckPolicy::Explicit,
            // Records wait for their checkpoint before they are acknowledged: longer than
            // that, so that they are not delivered again meanwhile.
            ack_wait: settings
                .checkpoint_interval
                .saturating_mul(3)
                .max(Duration::from_secs(30)),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start.max(1),
            },
            max_ack_pending: i64::try_from(settings.max_unacked + settings.batch)
                .unwrap_or(i64::MAX),
            ..Default::default()
        })
        .await
        .map_err(|e| {
            stream_error(
                &settings.stream,
                "creating the partition's consumer",
                e,
                settings.timeout,
            )
        })?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(settings.batch)
        .messages()
        .await
        .map_err(|e| {
            stream_error(
                &settings.stream,
                "reading the partition's consumer",
                e,
                settings.timeout,
            )
        })?;

    // Evaluating: commands may come, until the task ends or is aborted.
    shared.routes().insert(k, commands.clone());
    let _route = Route {
        shared: Arc::clone(&shared),
        k,
        commands,
    };
    let mut ticks = tokio::time::interval(settings.tick_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut checkpoints = tokio::time::interval(settings.checkpoint_interval);
    checkpoints.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            command = inbox.recv() => {
                let Some(command) = command else { return Ok(()) };
                if partition.command(command).await? {
                    return Ok(());
                }
            }
            message = messages.next() => {
                match message {
                    Some(Ok(message)) => {
                        partition.record(message).await?;
                        if partition.unacked.len() >= settings.max_unacked {
                            partition.checkpoint().await?;
                        }
                    }
                    // The client keeps pulling after a missed heartbeat (a slow server).
                    Some(Err(e)) if e.kind() == consumer::pull::MessagesErrorKind::MissingHeartbeat => {
                        tracing::debug!(partition = k, "the consumer missed a heartbeat");
                    }
                    // Deleted (a later holder recreated it), or a request refused: stop.
                    Some(Err(e)) => {
                        return Err(stream_error(&settings.stream, "reading the partition's consumer", e, settings.timeout));
                    }
                    None => {
                        return Err(Error::stream(&settings.stream, "the partition's consumer ended", None));
                    }
                }
            }
            _ = ticks.tick() => {
                let notes = partition.engine.tick(SystemTime::now());
                if !notes.is_empty() {
                    partition.dirty = true;
                    partition.publish(&notes).await?;
                }
            }
            _ = checkpoints.tick() => {
                if partition.dirty || !partition.unacked.is_empty() {
                    partition.checkpoint().await?;
                }
            }
        }
    }
}

/// Reads the checkpoint, builds and restores the engine, and writes the checkpoint back:
/// the partition and the stream sequence to start at.
async fn open_partition(
    shared: &Arc<Shared>,
    k: u16,
    key: &str,
    consumer_name: &str,
    valid_until: watch::Receiver<Instant>,
) -> Result<(Partition, u64), Error> {
    let settings = &shared.settings;
    let bucket = &settings.state_bucket;
    let entry = shared
        .state_kv
        .entry(key)
        .await
        .map_err(|e| kv_error(bucket, "reading the checkpoint", key, e, settings.timeout))?;
    let revision = entry.as_ref().map(|e| e.revision);
    let saved = entry
        .filter(|e| e.operation == kv::Operation::Put)
        .map(|e| Checkpoint::from_json(&e.value, settings.max_checkpoint_bytes));
    let now = SystemTime::now();
    let mut engine = new_engine(&settings.rules, settings.max_series, now)?;
    let mut restored = None;
    match saved {
        Some(Ok(checkpoint)) if checkpoint.partition == k => {
            let at = checkpoint.state.now;
            match engine.restore(checkpoint.state, at) {
                Ok(report) => {
                    log_restore(k, checkpoint.sequence, &report);
                    bump(&shared.stats.restored);
                    restored = Some((checkpoint.sequence, checkpoint.epoch));
                }
                Err(e) => {
                    tracing::warn!(
                        partition = k,
                        "the checkpoint's engine state is refused ({e}): starting from empty state"
                    );
                    bump(&shared.stats.bad_checkpoints);
                    engine = new_engine(&settings.rules, settings.max_series, now)?;
                }
            }
        }
        Some(Ok(checkpoint)) => {
            tracing::warn!(
                partition = k,
                found = checkpoint.partition,
                "the checkpoint is of another partition: starting from empty state"
            );
            bump(&shared.stats.bad_checkpoints);
        }
        Some(Err(e)) => {
            tracing::warn!(
                partition = k,
                "the checkpoint cannot be read ({e}): starting from empty state"
            );
            bump(&shared.stats.bad_checkpoints);
        }
        None => {}
    }
    let (start, epoch) = match restored {
        Some((sequence, epoch)) => (sequence.saturating_add(1), epoch),
        None => {
            let records = shared.js.get_stream(&settings.stream).await.map_err(|e| {
                stream_error(&settings.stream, "reading the stream", e, settings.timeout)
            })?;
            let start = match records.consumer_info(consumer_name).await {
                // The consumer of an earlier holder: what it acknowledged is behind us.
                Ok(info) => info.ack_floor.stream_sequence.saturating_add(1),
                // No consumer: records published from now on.
                Err(e) if consumer_not_found(e.kind()) => {
                    records.cached_info().state.last_sequence.saturating_add(1)
                }
                Err(e) => {
                    return Err(stream_error(
                        &settings.stream,
                        "reading the partition's consumer",
                        e,
                        settings.timeout,
                    ));
                }
            };
            (start, random_epoch())
        }
    };
    let mut partition = Partition {
        shared: Arc::clone(shared),
        k,
        key: key.to_owned(),
        engine,
        epoch,
        last_seq: start.saturating_sub(1),
        covered: start.saturating_sub(1),
        revision: 0,
        unacked: Vec::new(),
        dirty: true,
        valid_until,
    };
    // Written back at once: from now on a previous holder's write fails on the revision.
    partition.write(revision).await?;
    Ok((partition, start))
}

fn consumer_not_found(kind: jetstream::context::ConsumerInfoErrorKind) -> bool {
    use jetstream::context::ConsumerInfoErrorKind as Kind;
    match kind {
        Kind::NotFound => true,
        Kind::JetStream(e) => e.error_code() == jetstream::ErrorCode::CONSUMER_NOT_FOUND,
        _ => false,
    }
}

fn log_restore(k: u16, sequence: u64, report: &RestoreReport) {
    tracing::info!(
        partition = k,
        sequence,
        series = report.series,
        pending = report.pending,
        firing = report.firing,
        acknowledged = report.acknowledged,
        silences = report.silences,
        dropped = report.dropped(),
        "restored the partition's checkpoint"
    );
}

fn kv_error(
    bucket: &str,
    what: &str,
    key: &str,
    e: impl std::error::Error + Send + Sync + 'static,
    timeout: Duration,
) -> Error {
    if e.to_string().contains("timed out") {
        return Error::new(Repr::Timeout {
            what: format!("{what} {key} in {bucket}"),
            after: timeout,
        });
    }
    Error::key_value_from(bucket, format!("{what} {key}"), e)
}

impl Partition {
    /// Processes one record.
    async fn record(&mut self, message: jetstream::Message) -> Result<(), Error> {
        let seq = match message.info() {
            Ok(info) => info.stream_sequence,
            Err(e) => {
                tracing::warn!(
                    partition = self.k,
                    "a message without JetStream metadata: {e}"
                );
                return Ok(());
            }
        };
        if seq <= self.last_seq {
            // Delivered again (its acknowledgement was lost or late): processed already;
            // acknowledged now if a checkpoint covers it, else with the next one.
            if seq <= self.covered {
                let _ = message.ack().await;
            } else {
                self.unacked.push(message);
            }
            return Ok(());
        }
        self.last_seq = seq;
        bump(&self.shared.stats.records);
        match Record::from_json(&message.payload) {
            Ok(Record::Property(p)) => {
                let update =
                    wot_alerts::PropertyUpdate::new(&*p.thing_id, &*p.property, p.value.clone());
                let latest = SystemTime::now() + MAX_RECORD_TIME_AHEAD;
                if p.timestamp > latest {
                    tracing::debug!(
                        partition = self.k,
                        sequence = seq,
                        "a record time ahead of the clock is taken as the bound"
                    );
                }
                let notes = self.engine.update(p.timestamp.min(latest), &update);
                self.publish(&notes).await?;
            }
            Ok(_) => {}
            Err(e) => {
                bump(&self.shared.stats.bad_records);
                tracing::warn!(
                    partition = self.k,
                    sequence = seq,
                    kind = ?e.kind(),
                    "a record that cannot be read is skipped: {e}"
                );
            }
        }
        self.unacked.push(message);
        Ok(())
    }

    /// Publishes notifications, each acknowledged by the stream, in order.
    async fn publish(&mut self, notes: &[wot_alerts::Notification]) -> Result<(), Error> {
        for n in notes {
            let message = AlertMessage::new(self.epoch, self.k, n);
            let subject = alert_subject(&self.shared.alerts_prefix, &message.thing, &message.rule);
            let payload: bytes::Bytes = message.to_json()?.into();
            let mut attempt = 0;
            loop {
                attempt += 1;
                let publish = jetstream::message::PublishMessage::build()
                    .payload(payload.clone())
                    .message_id(&message.id);
                let result = match self.shared.js.send_publish(subject.clone(), publish).await {
                    Ok(ack) => ack.await.map(|a| a.duplicate).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match result {
                    Ok(duplicate) => {
                        bump(&self.shared.stats.notifications);
                        if duplicate {
                            bump(&self.shared.stats.duplicates);
                        }
                        tracing::debug!(partition = self.k, kind = %message.kind, rule = %message.rule, "notified");
                        break;
                    }
                    Err(reason) if attempt >= PUBLISH_ATTEMPTS => {
                        return Err(Error::publish(&subject, reason));
                    }
                    Err(reason) => {
                        tracing::warn!(
                            partition = self.k,
                            "publishing a notification: {reason}; again"
                        );
                        tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                    }
                }
            }
        }
        Ok(())
    }

    /// Handles a command: `true` when the partition is to stop.
    async fn command(&mut self, command: Command) -> Result<bool, Error> {
        match command {
            Command::Acknowledge {
                rule,
                thing,
                by,
                comment,
                reply,
            } => {
                match self
                    .engine
                    .acknowledge(SystemTime::now(), &rule, &thing, by, comment)
                {
                    Ok(notes) => {
                        self.dirty = true;
                        let done = async {
                            self.publish(&notes).await?;
                            self.checkpoint().await
                        }
                        .await;
                        let _ = reply.send(done.clone());
                        done?;
                    }
                    Err(e) => {
                        let _ = reply.send(Err(alert_error(&e)));
                    }
                }
            }
            Command::Silence { silence, reply } => {
                let id = self.engine.add_silence(silence);
                self.dirty = true;
                let done = self.checkpoint().await;
                let _ = reply.send(done.clone().map(|()| id));
                done?;
            }
            Command::Unsilence { id, reply } => {
                let removed = self.engine.remove_silence(id).is_some();
                self.dirty = true;
                let done = self.checkpoint().await;
                let _ = reply.send(done.clone().map(|()| removed));
                done?;
            }
            Command::Alerts { reply } => {
                let _ = reply.send(self.engine.active_alerts());
            }
            Command::Stop { reply } => {
                let done = self.checkpoint().await;
                let _ = reply.send(());
                done?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Writes the checkpoint, then acknowledges the records it covers.
    async fn checkpoint(&mut self) -> Result<(), Error> {
        self.write(Some(self.revision)).await?;
        self.dirty = false;
        for message in self.unacked.drain(..) {
            if let Err(e) = message.ack().await {
                // Delivered again later, and skipped then: it is covered.
                tracing::debug!(partition = self.k, "acknowledging a record: {e}");
            }
        }
        Ok(())
    }

    /// Writes the checkpoint on condition that the key's revision is `revision` (`None`:
    /// that there is no key).
    async fn write(&mut self, revision: Option<u64>) -> Result<(), Error> {
        let settings = &self.shared.settings;
        if Instant::now() >= *self.valid_until.borrow() {
            return Err(Error::key_value(
                &settings.state_bucket,
                format!(
                    "partition {}: the lease ran out before the checkpoint",
                    self.k
                ),
            ));
        }
        let checkpoint = Checkpoint {
            partition: self.k,
            sequence: self.last_seq,
            epoch: self.epoch,
            holder: self.shared.name.clone(),
            state: self.engine.state(),
        };
        let bytes = checkpoint.to_json();
        if bytes.len() > settings.max_checkpoint_bytes {
            return Err(Error::too_long(
                "alert state checkpoint",
                bytes.len(),
                settings.max_checkpoint_bytes,
            ));
        }
        let kv = &self.shared.state_kv;
        let written = match revision {
            Some(revision) => kv
                .update(&self.key, bytes.into(), revision)
                .await
                .map_err(|e| {
                    kv_error(
                        &settings.state_bucket,
                        "writing the checkpoint",
                        &self.key,
                        e,
                        settings.timeout,
                    )
                }),
            None => kv.create(&self.key, bytes.into()).await.map_err(|e| {
                kv_error(
                    &settings.state_bucket,
                    "writing the checkpoint",
                    &self.key,
                    e,
                    settings.timeout,
                )
            }),
        };
        self.revision = written?;
        self.covered = self.last_seq;
        bump(&self.shared.stats.checkpoints);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_round_trip_and_refuse_what_they_cannot_read() {
        let state = Engine::new().state();
        let checkpoint = Checkpoint {
            partition: 3,
            sequence: 42,
            epoch: 0x0123_4567_89ab_cdef,
            holder: "evaluator-a".into(),
            state,
        };
        let json = checkpoint.to_json();
        assert_eq!(Checkpoint::from_json(&json, 1 << 20).unwrap(), checkpoint);
        let too_long = Checkpoint::from_json(&json, 10).unwrap_err();
        assert_eq!(too_long.kind(), crate::ErrorKind::TooLong);
        assert_eq!(too_long.limit(), Some(10));
        let text = String::from_utf8(json).unwrap();
        let other = text.replacen("\"v\":1", "\"v\":2", 1);
        assert_eq!(
            Checkpoint::from_json(other.as_bytes(), 1 << 20)
                .unwrap_err()
                .kind(),
            crate::ErrorKind::Version
        );
        let other_state = text.replacen("\"version\":1", "\"version\":9", 1);
        assert_eq!(
            Checkpoint::from_json(other_state.as_bytes(), 1 << 20)
                .unwrap_err()
                .kind(),
            crate::ErrorKind::Decode
        );
        for garbage in [&b"not json"[..], b"{}", b"[1,2]", b"{\"v\":1}", b"\xff\xfe"] {
            assert_eq!(
                Checkpoint::from_json(garbage, 1 << 20).unwrap_err().kind(),
                crate::ErrorKind::Decode,
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn notification_ids_are_stable_and_messages_bounded() {
        use wot_alerts::{Condition, PropertyUpdate};
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let rule = Rule::new("hot", "*", "t", Condition::Gt(1.0));
        let run = || {
            let mut engine = new_engine(std::slice::from_ref(&rule), None, t0).unwrap();
            let fired = engine.update(t0, &PropertyUpdate::new("a", "t", serde_json::json!(5)));
            let resolved = engine.update(t0, &PropertyUpdate::new("a", "t", serde_json::json!(0)));
            (fired, resolved)
        };
        let (fired, resolved) = run();
        let (again, _) = run();
        let m = AlertMessage::new(7, 2, &fired[0]);
        assert_eq!(
            m.id,
            AlertMessage::new(7, 2, &again[0]).id,
            "made again: same id"
        );
        assert_ne!(m.id, AlertMessage::new(8, 2, &again[0]).id, "another epoch");
        assert_ne!(
            m.id,
            AlertMessage::new(7, 2, &resolved[0]).id,
            "another kind"
        );
        assert_eq!(m.id.len(), 50);
        let mut huge = m.clone();
        huge.value = Some(serde_json::json!("x".repeat(200_000)));
        huge.summary = "é".repeat(100_000);
        let json = huge.to_json().unwrap();
        assert!(json.len() <= MAX_ALERT_MESSAGE_BYTES, "{}", json.len());
        let back: AlertMessage = serde_json::from_slice(&json).unwrap();
        assert_eq!(back.value, None);
        assert_eq!(back.id, m.id);
    }

    /// The documented sizing: 2,000 Things with a firing alert each fit one checkpoint.
    #[test]
    fn two_thousand_firing_series_fit_a_checkpoint() {
        use wot_alerts::{Condition, PropertyUpdate};
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let rule = Rule::new("fridge-overheat", "*", "temperature", Condition::Gt(1.0));
        let mut engine = new_engine(std::slice::from_ref(&rule), None, t0).unwrap();
        for i in 0..2000 {
            let thing = format!("urn:dev:ops:32473-fridge-{i}");
            let update = PropertyUpdate::new(thing, "temperature", serde_json::json!(12.25));
            assert_eq!(engine.update(t0, &update).len(), 1);
        }
        let checkpoint = Checkpoint {
            partition: 0,
            sequence: u64::MAX,
            epoch: u64::MAX,
            holder: "evaluator-a".into(),
            state: engine.state(),
        };
        let len = checkpoint.to_json().len();
        assert!(len < DEFAULT_MAX_CHECKPOINT_BYTES, "{len}");
        eprintln!("{} bytes per series", len / 2000);
    }

    #[test]
    fn alert_subjects_are_tokens() {
        assert_eq!(
            alert_subject("wot-alerts", "urn:dev:1", "too hot"),
            "wot-alerts.urn=3Adev=3A1.too=20hot"
        );
    }
}
