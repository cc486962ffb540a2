//! A collector: claims Things, watches each claimed Thing and publishes what it sends.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::IntoFuture;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_stream::wrappers::WatchStream;
use wot_events::{
    ConsumedThing, EventSubscriber, EventSubscriberBuilder, ObserveOptions, SubscribeOptions,
};

use crate::error::Error;
use crate::lease::{Lease, LeaseStatus, Leases};
use crate::publisher::{Ack, Outgoing, Publisher};
use crate::record::{ConnectionChange, LinkState, Record};
use crate::resume::KvResumeStore;

/// The default number of records of one Thing sent and not acknowledged: 64.
pub const DEFAULT_PIPELINE: usize = 64;

/// The default number of Things one collector holds at most: 10,000.
pub const DEFAULT_MAX_HELD: usize = 10_000;

/// The default number of Things one round claims (or hands over) at most: 1,000.
pub const DEFAULT_CLAIMS_PER_ROUND: usize = 1_000;

/// The default time a Thing whose watch ended (every stream closed or failed) is left before
/// this collector claims it again: 30 s.
pub const DEFAULT_REST: Duration = Duration::from_secs(30);

/// Renewals sent at a time.
const RENEW_CONCURRENCY: usize = 32;

/// Claims tried at a time.
const CLAIM_CONCURRENCY: usize = 32;

/// The longest wait between two attempts to publish while NATS fails.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// Settings of a [`Collector`]. Every setting states its default.
#[derive(Debug, Clone)]
#[must_use]
pub struct CollectorBuilder {
    pipeline: usize,
    max_held: usize,
    claims_per_round: usize,
    rest: Duration,
    subscribe: SubscribeOptions,
    observe: ObserveOptions,
}

impl Default for CollectorBuilder {
    fn default() -> Self {
        CollectorBuilder {
            pipeline: DEFAULT_PIPELINE,
            max_held: DEFAULT_MAX_HELD,
            claims_per_round: DEFAULT_CLAIMS_PER_ROUND,
            rest: DEFAULT_REST,
            // Records go to NATS: no buffers of recent ones.
            subscribe: SubscribeOptions::new().buffer(None),
            observe: ObserveOptions::new().history(0),
        }
    }
}

impl CollectorBuilder {
    /// Records of one Thing sent and not acknowledged at most. Default: [`DEFAULT_PIPELINE`].
    pub fn pipeline(mut self, n: usize) -> Self {
        self.pipeline = n;
        self
    }

    /// Things held at most. Default: [`DEFAULT_MAX_HELD`]. In a fleet of `n` collectors,
    /// `things / (n - 1)` (rounded up) lets the others take over all of one that dies.
    pub fn max_held(mut self, n: usize) -> Self {
        self.max_held = n;
        self
    }

    /// Things one round claims (or hands over) at most. Default:
    /// [`DEFAULT_CLAIMS_PER_ROUND`]. It bounds how fast a collector takes over the Things of
    /// one that died: keep it above a collector's share.
    pub fn claims_per_round(mut self, n: usize) -> Self {
        self.claims_per_round = n;
        self
    }

    /// How long a Thing whose watch ended is left before it is claimed again. Default:
    /// [`DEFAULT_REST`].
    pub fn rest(mut self, rest: Duration) -> Self {
        self.rest = rest;
        self
    }

    /// The options of each Thing's event subscription. Default: no buffer of recent
    /// records, the rest as [`SubscribeOptions::new`].
    pub fn subscribe_options(mut self, options: SubscribeOptions) -> Self {
        self.subscribe = options;
        self
    }

    /// The options of each Thing's property observation. Default: no history, the rest as
    /// [`ObserveOptions::new`].
    pub fn observe_options(mut self, options: ObserveOptions) -> Self {
        self.observe = options;
        self
    }

    /// A collector of `things`, watched with a subscriber built from `subscriber` (its
    /// resume store set to `resume`), published with `publisher`, shared through `leases`.
    /// Things whose id is longer than [`MAX_THING_ID_LEN`](crate::MAX_THING_ID_LEN) are left
    /// out, with a warning each.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for a zero pipeline, held count or
    /// claim count, or a `resume` store not built with
    /// [`after_publish`](crate::KvResumeStoreBuilder::after_publish).
    pub fn build(
        self,
        things: Vec<ConsumedThing>,
        subscriber: EventSubscriberBuilder,
        publisher: Publisher,
        leases: Leases,
        resume: KvResumeStore,
    ) -> Result<Collector, Error> {
        if self.pipeline == 0 || self.max_held == 0 || self.claims_per_round == 0 {
            return Err(Error::config(
                "the pipeline, held count and claims per round must not be zero",
            ));
        }
        if !resume.is_after_publish() {
            return Err(Error::config(
                "a collector's resume store must be built with after_publish(true)",
            ));
        }
        let (things, too_long): (Vec<_>, Vec<_>) = things
            .into_iter()
            .partition(|t| t.id().len() <= crate::MAX_THING_ID_LEN);
        for thing in too_long {
            tracing::warn!(
                thing = %crate::token(&thing.id().chars().take(64).collect::<String>()),
                len = thing.id().len(),
                limit = crate::MAX_THING_ID_LEN,
                "a Thing id too long for a subject: the Thing is not watched"
            );
        }
        let resume = Arc::new(resume);
        let subscriber = subscriber.resume_store(resume.clone()).build();
        let (held_tx, _) = watch::channel(Vec::new());
        Ok(Collector {
            shared: Arc::new(Shared {
                settings: self,
                subscriber,
                publisher,
                resume,
            }),
            leases,
            things,
            held_tx,
        })
    }
}

/// What the watch tasks share.
struct Shared {
    settings: CollectorBuilder,
    subscriber: EventSubscriber,
    publisher: Publisher,
    resume: Arc<KvResumeStore>,
}

/// Claims Things from a list through [`Leases`], watches each Thing it holds with
/// wot-events (resuming from the [`KvResumeStore`]), and publishes every record with the
/// [`Publisher`]; drops a Thing whose lease it lost.
///
/// It works in rounds, every [`Leases::renew_interval`] (a third of the lease time):
///
/// ```text
/// announce this collector; share = ceil(things / collectors announced), at most max_held
/// held Thing ── renew ──▶ Held: keep watching
///     │                   Lost, or no renewal through by valid_until: stop watching, forget its points
///     └─ its watch ended (every stream closed or failed): release, rest, claim again later
/// more held than the share: stop watching the excess, write their points, release them
/// free Thing (while fewer than the share) ── claim ──▶ read its resume points, start watching
///                                              held by another: try again next round
/// stop: stop watching, write the resume points, release every lease, withdraw
/// ```
///
/// Watching a Thing: every event (`subscribe_all`), every property
/// (`observe_all_properties`) and every connection change, each published in the order
/// received, with at most [`pipeline`](CollectorBuilder::pipeline) records of the Thing
/// unacknowledged. A record whose acknowledgement fails is sent again, with the records
/// after it, in order, with the same message ids (the stream stores each once). The resume
/// point of a stream moves when the record of its event is acknowledged.
///
/// A collector that dies leaves its leases and its announcement to expire: the others
/// count one collector fewer, claim its Things within a lease time and a round, and resume
/// them from the points in the bucket.
///
/// # Examples
///
/// ```no_run
/// # async fn run(things: Vec<wot_events::ConsumedThing>) -> Result<(), wot_nats::Error> {
/// use wot_events::EventSubscriber;
/// use wot_nats::{Collector, KvResumeStore, Leases, Publisher};
///
/// let client = wot_nats::connect("nats://127.0.0.1:4222", wot_nats::DEFAULT_TIMEOUT).await?;
/// let publisher = Publisher::builder().build(client.clone())?;
/// publisher.ensure_stream().await?;
/// let leases = Leases::builder().open(client.clone(), "collector-a").await?;
/// let resume = KvResumeStore::builder().after_publish(true).open(client).await?;
/// let collector = Collector::builder().build(
///     things,
///     EventSubscriber::builder(),
///     publisher,
///     leases,
///     resume,
/// )?;
/// let stop = std::future::pending::<()>(); // a signal, in an app
/// collector.run(stop).await;
/// # Ok(())
/// # }
/// ```
pub struct Collector {
    shared: Arc<Shared>,
    leases: Leases,
    things: Vec<ConsumedThing>,
    held_tx: watch::Sender<Vec<String>>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("settings", &self.shared.settings)
            .field("things", &self.things.len())
            .field("holder", &self.leases.holder())
            .finish_non_exhaustive()
    }
}

/// A Thing this collector holds: its lease and the task watching it.
struct Held {
    lease: Lease,
    watch: AbortOnDrop,
}

/// A task aborted when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Collector {
    /// Settings to build a collector with, all at their defaults.
    pub fn builder() -> CollectorBuilder {
        CollectorBuilder::default()
    }

    /// A receiver of the ids of the Things held, sorted, updated after each round.
    pub fn held(&self) -> watch::Receiver<Vec<String>> {
        self.held_tx.subscribe()
    }

    /// Runs rounds until `stop` completes, then stops watching, writes the resume points and
    /// releases every lease. Failures of NATS and of Things are logged and retried, never
    /// the end of the run. Dropping the future instead stops the watches at once and
    /// releases nothing (the leases expire: as if the process died).
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut held: HashMap<String, Held> = HashMap::new();
        let mut resting: HashMap<String, Instant> = HashMap::new();
        let mut share = self.shared.settings.max_held;
        let start = crate::subject::fnv1a(self.leases.holder().as_bytes()) as usize;
        let mut tick = tokio::time::interval(self.leases.renew_interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut stop => break,
                _ = tick.tick() => {}
            }
            if let Some(fair) = self.share().await {
                share = fair;
            }
            self.renew(&mut held, &mut resting).await;
            self.shed(&mut held, &mut resting, share).await;
            self.claim(&mut held, &mut resting, share, start).await;
            let mut ids: Vec<String> = held.keys().cloned().collect();
            ids.sort();
            self.held_tx.send_replace(ids);
        }
        // Stop watching first, so that no point moves after it is written.
        let leases: Vec<Lease> = held.into_values().map(|h| h.lease).collect();
        if let Err(e) = self.shared.resume.flush().await {
            tracing::warn!(error = %e, "resume points not written at the stop");
        }
        for lease in leases {
            let thing = lease.thing_id().to_owned();
            if let Err(e) = self.leases.release(lease).await {
                tracing::warn!(thing = %crate::token(&thing), error = %e, "lease not released");
            }
            self.shared.resume.forget(&thing);
        }
        if let Err(e) = self.leases.withdraw().await {
            tracing::warn!(error = %e, "announcement not withdrawn");
        }
        self.held_tx.send_replace(Vec::new());
    }

    /// Renews every lease held; drops the Things lost and those whose watch ended.
    async fn renew(
        &self,
        held: &mut HashMap<String, Held>,
        resting: &mut HashMap<String, Instant>,
    ) {
        let leases = &self.leases;
        // Futures built in a loop, not by a closure: a closure returning a future that
        // borrows its argument is not `Send` for every lifetime, which `tokio::spawn` needs.
        let mut renewals = Vec::with_capacity(held.len());
        for (id, h) in held.iter_mut() {
            renewals.push(renew_one(leases, id, h));
        }
        let outcomes: Vec<(String, Verdict)> = futures::stream::iter(renewals)
            .buffer_unordered(RENEW_CONCURRENCY)
            .collect()
            .await;
        for (id, outcome) in outcomes {
            if outcome == Verdict::Keep {
                continue;
            }
            let Some(h) = held.remove(&id) else { continue };
            drop(h.watch);
            self.shared.resume.forget(&id);
            if outcome == Verdict::Ended {
                tracing::info!(thing = %crate::token(&id), "every stream of the Thing ended: released for now");
                if let Err(e) = self.leases.release(h.lease).await {
                    tracing::warn!(thing = %crate::token(&id), error = %e, "lease not released");
                }
                resting.insert(id, Instant::now() + self.shared.settings.rest);
            } else {
                tracing::info!(thing = %crate::token(&id), "lease lost: stopped watching");
            }
        }
    }

    /// Announces this collector and counts the collectors announced: this one's fair share
    /// of the Things, `ceil(things / collectors)`, at most `max_held`. `None` when the
    /// members bucket failed (the last share stays).
    async fn share(&self) -> Option<usize> {
        if let Err(e) = self.leases.announce().await {
            tracing::warn!(error = %e, "not announced");
        }
        match self.leases.members().await {
            Ok(members) => {
                let mut count = members.len();
                if !members.iter().any(|m| m == self.leases.holder()) {
                    count += 1;
                }
                Some(
                    self.things
                        .len()
                        .div_ceil(count)
                        .min(self.shared.settings.max_held),
                )
            }
            Err(e) => {
                tracing::warn!(error = %e, "collectors not counted");
                None
            }
        }
    }

    /// Gives up Things beyond `share` (another collector joined): stops watching them,
    /// writes their resume points, releases them, and leaves them for a lease time so that
    /// the others can claim them.
    async fn shed(
        &self,
        held: &mut HashMap<String, Held>,
        resting: &mut HashMap<String, Instant>,
        share: usize,
    ) {
        let excess = held
            .len()
            .saturating_sub(share)
            .min(self.shared.settings.claims_per_round);
        if excess == 0 {
            return;
        }
        let mut ids: Vec<String> = held.keys().cloned().collect();
        ids.sort();
        // Removing a Thing from `held` drops its watch: no point of it moves after the write.
        let shed: Vec<(String, Lease)> = ids
            .into_iter()
            .rev()
            .take(excess)
            .filter_map(|id| held.remove(&id).map(|h| (id, h.lease)))
            .collect();
        if let Err(e) = self.shared.resume.flush().await {
            tracing::warn!(error = %e, "resume points not written before handing Things over");
        }
        let until = Instant::now() + self.leases.ttl();
        for (id, lease) in shed {
            self.shared.resume.forget(&id);
            if let Err(e) = self.leases.release(lease).await {
                tracing::warn!(thing = %crate::token(&id), error = %e, "lease not released");
            }
            tracing::info!(thing = %crate::token(&id), share, "handed over to another collector");
            resting.insert(id, until);
        }
    }

    /// Claims free Things, up to `share` and the round's limit, and starts watching them.
    async fn claim(
        &self,
        held: &mut HashMap<String, Held>,
        resting: &mut HashMap<String, Instant>,
        share: usize,
        start: usize,
    ) {
        let now = Instant::now();
        resting.retain(|_, until| *until > now);
        let limit = share
            .saturating_sub(held.len())
            .min(self.shared.settings.claims_per_round);
        if limit == 0 || self.things.is_empty() {
            return;
        }
        // From this collector's own place in the list, so that collectors that look for free
        // Things at the same time mostly try different ones.
        // Only Things no lease is on now: trying the others would cost a failed create each.
        let leased = match self
            .leases
            .leased(self.things.len().saturating_mul(2))
            .await
        {
            Ok(leased) => leased,
            Err(e) => {
                tracing::warn!(error = %e, "leases not listed; trying every Thing");
                HashSet::new()
            }
        };
        let start = start % self.things.len();
        // Collected before the first await: an iterator with a closure held across an await
        // is not `Send` for every lifetime, which `tokio::spawn` needs.
        let candidates: Vec<&ConsumedThing> = self.things[start..]
            .iter()
            .chain(&self.things[..start])
            .filter(|t| {
                !held.contains_key(t.id())
                    && !resting.contains_key(t.id())
                    && !leased.contains(t.id())
            })
            .collect();
        let mut candidates = candidates.into_iter().peekable();
        let mut claimed = Vec::new();
        while claimed.len() < limit && candidates.peek().is_some() {
            let batch: Vec<&ConsumedThing> = candidates
                .by_ref()
                .take(CLAIM_CONCURRENCY.min(limit - claimed.len()))
                .collect();
            let mut attempts = Vec::with_capacity(batch.len());
            for thing in batch {
                attempts.push(claim_one(&self.leases, &self.shared.resume, thing));
            }
            let mut failed = false;
            for outcome in futures::future::join_all(attempts).await {
                match outcome {
                    Ok(Some(won)) => claimed.push(won),
                    Ok(None) => {}
                    Err(e) => {
                        failed = true;
                        tracing::warn!(error = %e, "claiming failed; trying again next round");
                    }
                }
            }
            if failed {
                break;
            }
        }
        for (thing, lease) in claimed {
            tracing::info!(thing = %crate::token(thing.id()), "claimed: watching");
            let task = tokio::spawn(watch_thing(Arc::clone(&self.shared), thing.clone()));
            held.insert(
                thing.id().to_owned(),
                Held {
                    lease,
                    watch: AbortOnDrop(task),
                },
            );
        }
    }
}

/// Claims one Thing and reads its resume points: `None` when another collector holds it; a
/// lease whose points cannot be read is released.
async fn claim_one<'a>(
    leases: &Leases,
    resume: &KvResumeStore,
    thing: &'a ConsumedThing,
) -> Result<Option<(&'a ConsumedThing, Lease)>, Error> {
    let lease = match leases.claim(thing.id()).await {
        Ok(Some(lease)) => lease,
        Ok(None) => return Ok(None),
        Err(e) => return Err(e),
    };
    if let Err(e) = resume.prefetch(thing.id()).await {
        tracing::warn!(thing = %crate::token(thing.id()), error = %e, "resume points not read: released");
        let _ = leases.release(lease).await;
        return Ok(None);
    }
    Ok(Some((thing, lease)))
}

/// Renews the lease of one held Thing: whether to drop it.
async fn renew_one(leases: &Leases, id: &str, h: &mut Held) -> (String, Verdict) {
    if h.watch.0.is_finished() {
        return (id.to_owned(), Verdict::Ended);
    }
    let outcome = match leases.renew(&mut h.lease).await {
        Ok(LeaseStatus::Held) => Verdict::Keep,
        Ok(LeaseStatus::Lost) => Verdict::Lost,
        Err(e) if Instant::now() >= h.lease.valid_until() => {
            tracing::warn!(thing = %crate::token(id), error = %e, "lease not renewed in time: stopping");
            Verdict::Lost
        }
        Err(e) => {
            tracing::warn!(thing = %crate::token(id), error = %e, "lease not renewed; trying again");
            Verdict::Keep
        }
    };
    (id.to_owned(), outcome)
}

/// What a round does with a held Thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Its lease is renewed (or may still be): keep watching.
    Keep,
    /// Its lease is lost, or was not renewed in time: stop watching.
    Lost,
    /// Every stream of it ended: release it for a while.
    Ended,
}

/// Watches one Thing until every stream of it ends; logs why it could not.
async fn watch_thing(shared: Arc<Shared>, thing: ConsumedThing) {
    if let Err(e) = watch(&shared, &thing).await {
        tracing::warn!(error = %e, "watching a Thing failed");
    }
}

async fn watch(shared: &Shared, thing: &ConsumedThing) -> Result<(), Error> {
    let id = thing.id();
    let settings = &shared.settings;
    let events = shared
        .subscriber
        .subscribe_all([thing], settings.subscribe.clone())
        .map_err(|e| Error::thing(id, e))?;
    let properties = shared
        .subscriber
        .observe_all_properties(thing, settings.observe.clone())
        .map_err(|e| Error::thing(id, e))?;
    let mut states = Vec::new();
    for s in events.subscriptions() {
        states.push((event_stream_of(s.label(), id), s.state()));
    }
    for (name, _, rx) in properties.connections() {
        let stream = if name == "*" {
            "properties".to_owned()
        } else {
            format!("property/{name}")
        };
        states.push((stream, rx.clone()));
    }
    let mut changes = futures::stream::select_all(
        states
            .into_iter()
            .map(|(stream, rx)| WatchStream::new(rx).map(move |state| (stream.clone(), state))),
    );
    let mut events = events.fuse();
    let mut properties = properties.fuse();
    let mut out = Pipeline::new(shared);
    let (mut events_done, mut properties_done) = (false, false);
    while !(events_done && properties_done) {
        let record = tokio::select! {
            result = out.front_ack(), if !out.is_empty() => {
                out.settled(result).await;
                continue;
            }
            item = events.next(), if !events_done => match item {
                Some(Ok(event)) => Record::Event(event),
                Some(Err(e)) => { log_stream_error(id, &e); continue; }
                None => { events_done = true; continue; }
            },
            item = properties.next(), if !properties_done => match item {
                Some(Ok(update)) => Record::Property(update),
                Some(Err(e)) => { log_stream_error(id, &e); continue; }
                None => { properties_done = true; continue; }
            },
            Some((stream, state)) = changes.next() => Record::Connection(ConnectionChange {
                thing_id: id.into(),
                stream,
                state: LinkState::from(&state),
                at: SystemTime::now(),
            }),
        };
        out.push(record).await;
    }
    out.finish().await;
    Ok(())
}

/// `event/<name>` or `events`, from a subscription's label (`"<thing> event <name>"`,
/// `"<thing> all events"`).
fn event_stream_of(label: &str, thing_id: &str) -> String {
    let rest = label.strip_prefix(thing_id).map_or(label, str::trim_start);
    match rest.strip_prefix("event ") {
        Some(name) => format!("event/{name}"),
        None => "events".to_owned(),
    }
}

fn log_stream_error(thing: &str, e: &wot_events::Error) {
    tracing::debug!(thing = %crate::token(thing), error = %e, terminal = e.is_terminal(), "stream error");
}

/// The acknowledgement of a record on its way, awaited by a task of its own: it comes (and
/// frees the record's in-flight place in the publisher) whether or not the pipeline is
/// polling it. Polled by reference, so that waiting for it can be cancelled and taken up
/// again. Dropping it ends the task.
struct AckTask {
    task: tokio::task::JoinHandle<Result<Ack, Error>>,
    subject: String,
}

impl AckTask {
    fn spawn(ack: crate::PendingAck) -> Self {
        let subject = ack.subject().to_owned();
        AckTask {
            task: tokio::spawn(ack.into_future()),
            subject,
        }
    }
}

impl Drop for AckTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Future for AckTask {
    type Output = Result<Ack, Error>;

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = &mut *self;
        Pin::new(&mut this.task).poll(cx).map(|joined| {
            // The task ends early only when aborted or panicking: as if no ack came.
            joined.unwrap_or_else(|e| Err(Error::publish(&this.subject, e.to_string())))
        })
    }
}

/// One Thing's records on their way: sent in order, at most `pipeline` unacknowledged.
///
/// Each acknowledgement is awaited by a task of its own ([`AckTask`]), so that it frees its
/// in-flight place in the publisher as soon as it comes, even while this pipeline waits for
/// a place to send its next record; the pipeline takes the results in order.
struct Pipeline<'a> {
    shared: &'a Shared,
    queue: VecDeque<(Record, Outgoing, AckTask)>,
    delay: Duration,
}

impl<'a> Pipeline<'a> {
    fn new(shared: &'a Shared) -> Self {
        Pipeline {
            shared,
            queue: VecDeque::new(),
            delay: Duration::from_millis(100),
        }
    }

    fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Sends `record`, first waiting for acknowledgements while the pipeline is full.
    async fn push(&mut self, record: Record) {
        while self.queue.len() >= self.shared.settings.pipeline {
            let result = self.front_ack().await;
            self.settled(result).await;
        }
        let outgoing = match self.shared.publisher.prepare(&record) {
            Ok(outgoing) => outgoing,
            Err(e) => {
                tracing::warn!(thing = %crate::token(record.thing_id()), error = %e, "record not publishable: dropped");
                return;
            }
        };
        let ack = self.send(&outgoing).await;
        self.queue.push_back((record, outgoing, ack));
    }

    /// Sends until the message is handed to the connection, waiting longer after each
    /// failure.
    async fn send(&mut self, outgoing: &Outgoing) -> AckTask {
        loop {
            match self.shared.publisher.send_prepared(outgoing).await {
                Ok(ack) => return AckTask::spawn(ack),
                Err(e) => {
                    tracing::warn!(subject = %outgoing.subject(), error = %e, "publishing failed; retrying");
                    self.back_off().await;
                }
            }
        }
    }

    async fn back_off(&mut self) {
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(MAX_RETRY_DELAY);
    }

    /// The oldest acknowledgement, once it comes; the record stays in the queue (cancel
    /// safe). Hand the result to [`settled`](Self::settled) at once. Never resolves when the
    /// queue is empty.
    async fn front_ack(&mut self) -> Result<Ack, Error> {
        match self.queue.front_mut() {
            Some((_, _, ack)) => ack.await,
            None => std::future::pending().await,
        }
    }

    /// Takes the oldest record off the queue with its acknowledgement's `result`: moves its
    /// resume point, or on a failure sends it and every record after it again, in order.
    async fn settled(&mut self, result: Result<Ack, Error>) {
        let Some((record, outgoing, _)) = self.queue.pop_front() else {
            return;
        };
        match result {
            Ok(_) => {
                self.delay = Duration::from_millis(100);
                self.shared.resume.published(&record);
            }
            Err(e) => {
                tracing::warn!(subject = %outgoing.subject(), error = %e, "no acknowledgement; sending again");
                let again: Vec<(Record, Outgoing)> = std::iter::once((record, outgoing))
                    .chain(self.queue.drain(..).map(|(r, o, _)| (r, o)))
                    .collect();
                self.back_off().await;
                for (record, outgoing) in again {
                    let ack = self.send(&outgoing).await;
                    self.queue.push_back((record, outgoing, ack));
                }
            }
        }
    }

    /// Waits for every acknowledgement.
    async fn finish(&mut self) {
        while !self.queue.is_empty() {
            let result = self.front_ack().await;
            self.settled(result).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_from_labels() {
        assert_eq!(
            event_stream_of("urn:t event overheat", "urn:t"),
            "event/overheat"
        );
        assert_eq!(event_stream_of("urn:t all events", "urn:t"), "events");
        assert_eq!(event_stream_of("a b event c d", "a b"), "event/c d");
    }
}
