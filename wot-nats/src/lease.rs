//! Leases on Things, in a key-value bucket: which collector watches which Thing.

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::bucket::ensure_bucket;
use crate::connect::DEFAULT_TIMEOUT;
use crate::error::{Error, Repr};
use crate::subject::{check_thing_id, decode_token, token};

/// The default lease bucket: `wot-leases`.
pub const DEFAULT_LEASE_BUCKET: &str = "wot-leases";

/// The default lease time: 10 s. A lease not renewed for this long is gone, and another
/// collector can claim the Thing.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);

/// The default bucket where collectors announce themselves: `wot-members`.
pub const DEFAULT_MEMBERS_BUCKET: &str = "wot-members";

/// The most members [`Leases::members`] reads: 10,000.
pub const MAX_MEMBERS: usize = 10_000;

/// The longest holder name, in bytes: 256.
pub const MAX_HOLDER_LEN: usize = 256;

/// The value of a lease key.
#[derive(Serialize, Deserialize)]
struct LeaseValue {
    v: u32,
    holder: String,
}

/// Settings of [`Leases`]. Every setting states its default.
#[derive(Debug, Clone)]
#[must_use]
pub struct LeasesBuilder {
    bucket: String,
    members_bucket: String,
    ttl: Duration,
    timeout: Duration,
}

impl Default for LeasesBuilder {
    fn default() -> Self {
        LeasesBuilder {
            bucket: DEFAULT_LEASE_BUCKET.to_owned(),
            members_bucket: DEFAULT_MEMBERS_BUCKET.to_owned(),
            ttl: DEFAULT_LEASE_TTL,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl LeasesBuilder {
    /// The bucket. Default: [`DEFAULT_LEASE_BUCKET`].
    pub fn bucket(mut self, name: impl Into<String>) -> Self {
        self.bucket = name.into();
        self
    }

    /// The bucket where collectors announce themselves ([`Leases::announce`]). Default:
    /// [`DEFAULT_MEMBERS_BUCKET`].
    pub fn members_bucket(mut self, name: impl Into<String>) -> Self {
        self.members_bucket = name.into();
        self
    }

    /// The lease time, the bucket's max age. Default: [`DEFAULT_LEASE_TTL`]. Every collector
    /// of a fleet must use the same (the bucket keeps the first one's; others are refused).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The limit on each request. Default: [`DEFAULT_TIMEOUT`]. Keep it well under a third
    /// of the lease time.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Opens the bucket (creating it when missing) for the collector named `holder`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for a bad bucket name, a lease time
    /// under 100 ms, a zero timeout, or a holder name that is empty or over
    /// [`MAX_HOLDER_LEN`]; [`ErrorKind::KeyValue`](crate::ErrorKind::KeyValue) when the
    /// bucket cannot be created or has another lease time.
    pub async fn open(
        self,
        client: async_nats::Client,
        holder: impl Into<String>,
    ) -> Result<Leases, Error> {
        let holder = holder.into();
        if holder.is_empty() || holder.len() > MAX_HOLDER_LEN {
            return Err(Error::config(format!(
                "the holder name must be 1 to {MAX_HOLDER_LEN} bytes"
            )));
        }
        if self.ttl < Duration::from_millis(100) || self.timeout.is_zero() {
            return Err(Error::config(
                "the lease time must be at least 100 ms and the timeout not zero",
            ));
        }
        let js = jetstream::ContextBuilder::new()
            .timeout(self.timeout)
            .build(client);
        // One small value per Thing, each gone a lease time after its last renewal: no size limit.
        let kv = ensure_bucket(&js, &self.bucket, self.ttl, 1024, -1).await?;
        // One key per collector, gone a lease time after its last announcement.
        let members = ensure_bucket(&js, &self.members_bucket, self.ttl, 1024, -1).await?;
        let value = serde_json::to_vec(&LeaseValue {
            v: 1,
            holder: holder.clone(),
        })
        .map_err(|e| Error::new(Repr::Encode(e.to_string())))?;
        Ok(Leases {
            kv,
            members,
            settings: self,
            holder,
            value: value.into(),
        })
    }
}

/// Leases on Things in a JetStream key-value bucket whose max age is the lease time.
///
/// The key of a Thing is its id as one [token](crate::encode_token); the value names the
/// holder (`{"v":1,"holder":"collector-a"}`).
///
/// - [`claim`](Self::claim) creates the key: it fails when the key is there, so one collector
///   at a time holds a Thing.
/// - [`renew`](Self::renew) writes the key again, on condition that its revision is the one
///   this collector wrote last (compare-and-set); the write restarts the max age. Renew every
///   [`renew_interval`](Self::renew_interval) (a third of the lease time).
/// - A collector that stops renewing (it died, or lost NATS) loses the key after the lease
///   time, and the next [`claim`](Self::claim) by another collector succeeds. Its own next
///   renewal reports [`LeaseStatus::Lost`]: it must stop watching the Thing. It must also
///   stop at [`Lease::valid_until`] if no renewal got through by then.
/// - [`release`](Self::release) deletes the key on a clean stop, on the same condition.
///
/// # Examples
///
/// ```no_run
/// # async fn run(client: wot_nats::async_nats::Client) -> Result<(), wot_nats::Error> {
/// use wot_nats::{LeaseStatus, Leases};
///
/// let leases = Leases::builder().open(client, "collector-a").await?;
/// if let Some(mut lease) = leases.claim("urn:dev:boiler").await? {
///     // ... watch the Thing; every leases.renew_interval():
///     if leases.renew(&mut lease).await? == LeaseStatus::Lost {
///         // another collector has it now: stop watching
///     }
///     leases.release(lease).await?;
/// }
/// # Ok(())
/// # }
/// ```
pub struct Leases {
    kv: kv::Store,
    members: kv::Store,
    settings: LeasesBuilder,
    holder: String,
    value: bytes::Bytes,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("settings", &self.settings)
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

/// A lease held on one Thing, from [`Leases::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    thing_id: String,
    key: String,
    revision: u64,
    valid_until: Instant,
}

impl Lease {
    /// The Thing's id.
    pub fn thing_id(&self) -> &str {
        &self.thing_id
    }

    /// The revision of the key this collector wrote last.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Until when the lease is surely held: the lease time after the last successful claim
    /// or renewal was sent. Past it, stop watching the Thing unless a renewal succeeds.
    pub fn valid_until(&self) -> Instant {
        self.valid_until
    }
}

/// What [`Leases::renew`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseStatus {
    /// The lease is renewed.
    Held,
    /// The key expired or another collector holds it now: stop watching the Thing.
    Lost,
}

impl Leases {
    /// Settings to open the lease bucket with, all at their defaults.
    pub fn builder() -> LeasesBuilder {
        LeasesBuilder::default()
    }

    /// The lease time.
    pub fn ttl(&self) -> Duration {
        self.settings.ttl
    }

    /// How often to renew: a third of the lease time.
    pub fn renew_interval(&self) -> Duration {
        self.settings.ttl / 3
    }

    /// This collector's name.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    fn key(thing_id: &str) -> Result<String, Error> {
        check_thing_id(thing_id)?;
        Ok(token(thing_id))
    }

    /// Claims the Thing `thing_id`: `None` when another collector (or this one) holds it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::TooLong`](crate::ErrorKind::TooLong) for an id over
    /// [`MAX_THING_ID_LEN`](crate::MAX_THING_ID_LEN); [`ErrorKind::Timeout`](crate::ErrorKind::Timeout)
    /// or [`ErrorKind::KeyValue`](crate::ErrorKind::KeyValue) when the bucket did not answer
    /// or failed.
    pub async fn claim(&self, thing_id: &str) -> Result<Option<Lease>, Error> {
        let key = Self::key(thing_id)?;
        let sent = Instant::now();
        match self.kv.create(&key, self.value.clone()).await {
            Ok(revision) => {
                tracing::debug!(thing = %key, revision, "claimed");
                Ok(Some(Lease {
                    thing_id: thing_id.to_owned(),
                    key,
                    revision,
                    valid_until: sent + self.settings.ttl,
                }))
            }
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(self.error(&self.settings.bucket, "claiming the lease of", &key, e)),
        }
    }

    /// Renews `lease`, or finds it lost.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) or
    /// [`ErrorKind::KeyValue`](crate::ErrorKind::KeyValue) when the bucket did not answer or
    /// failed: the lease is neither renewed nor known lost (try again; stop at
    /// [`Lease::valid_until`]).
    pub async fn renew(&self, lease: &mut Lease) -> Result<LeaseStatus, Error> {
        let sent = Instant::now();
        match self
            .kv
            .update(&lease.key, self.value.clone(), lease.revision)
            .await
        {
            Ok(revision) => {
                lease.revision = revision;
                lease.valid_until = sent + self.settings.ttl;
                Ok(LeaseStatus::Held)
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                tracing::info!(thing = %lease.key, "lease lost");
                Ok(LeaseStatus::Lost)
            }
            Err(e) => Err(self.error(
                &self.settings.bucket,
                "renewing the lease of",
                &lease.key,
                e,
            )),
        }
    }

    /// Gives the Thing up: deletes its key if this collector still holds it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) or
    /// [`ErrorKind::KeyValue`](crate::ErrorKind::KeyValue) when the bucket did not answer or
    /// failed; the key then expires after the lease time.
    pub async fn release(&self, lease: Lease) -> Result<(), Error> {
        match self
            .kv
            .delete_expect_revision(&lease.key, Some(lease.revision))
            .await
        {
            Ok(()) => Ok(()),
            // The key moved on (another holder) or expired: nothing of ours to delete.
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                tracing::debug!(thing = %lease.key, "release: the lease was already lost");
                Ok(())
            }
            Err(e) => Err(self.error(
                &self.settings.bucket,
                "releasing the lease of",
                &lease.key,
                e,
            )),
        }
    }

    /// Who holds the Thing `thing_id`, if anyone.
    ///
    /// # Errors
    ///
    /// As [`claim`](Self::claim), and [`ErrorKind::Decode`](crate::ErrorKind::Decode) for a
    /// value this crate did not write.
    pub async fn holder_of(&self, thing_id: &str) -> Result<Option<String>, Error> {
        let key = Self::key(thing_id)?;
        match self.kv.get(&key).await {
            Ok(None) => Ok(None),
            Ok(Some(bytes)) => serde_json::from_slice::<LeaseValue>(&bytes)
                .map(|v| Some(v.holder))
                .map_err(|e| Error::new(Repr::Decode(e.to_string()))),
            Err(e) => Err(self.error(&self.settings.bucket, "reading the lease of", &key, e)),
        }
    }

    /// The ids of the Things leased now (by any collector), at most `limit` of them: keys
    /// that expired or were released are not listed. One request and one short message per
    /// key; a lease can be taken or lost right after.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) or
    /// [`ErrorKind::KeyValue`](crate::ErrorKind::KeyValue) when the bucket did not answer or
    /// failed.
    pub async fn leased(&self, limit: usize) -> Result<HashSet<String>, Error> {
        let bucket = &self.settings.bucket;
        let keys = match self.kv.keys().await {
            Ok(keys) => keys,
            Err(e) => return Err(self.error(bucket, "listing", "leases", e)),
        };
        let mut keys = keys.take(limit);
        let mut things = HashSet::new();
        while let Some(key) = keys.next().await {
            match key {
                Ok(key) => {
                    if let Ok(thing) = decode_token(&key) {
                        things.insert(thing);
                    }
                }
                Err(e) => return Err(self.error(bucket, "listing", "leases", e)),
            }
        }
        Ok(things)
    }

    /// Announces this collector in the members bucket (whose max age is the lease time):
    /// call it every [`renew_interval`](Self::renew_interval), so that
    /// [`members`](Self::members) counts it while it runs and stops counting it a lease time
    /// after it stops.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) or
    /// [`ErrorKind::KeyValue`](crate::ErrorKind::KeyValue) when the bucket did not answer or
    /// failed.
    pub async fn announce(&self) -> Result<(), Error> {
        let key = token(&self.holder);
        match self.members.put(&key, self.value.clone()).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.error(&self.settings.members_bucket, "announcing", &key, e)),
        }
    }

    /// Removes this collector's announcement (on a clean stop).
    ///
    /// # Errors
    ///
    /// As [`announce`](Self::announce); the announcement then expires after the lease time.
    pub async fn withdraw(&self) -> Result<(), Error> {
        let key = token(&self.holder);
        match self.members.delete(&key).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.error(&self.settings.members_bucket, "withdrawing", &key, e)),
        }
    }

    /// The names of the collectors announced within the last lease time (at most
    /// [`MAX_MEMBERS`]), sorted.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) or
    /// [`ErrorKind::KeyValue`](crate::ErrorKind::KeyValue) when the bucket did not answer or
    /// failed.
    pub async fn members(&self) -> Result<Vec<String>, Error> {
        let keys = match self.members.keys().await {
            Ok(keys) => keys,
            Err(e) => {
                return Err(self.error(&self.settings.members_bucket, "listing", "members", e));
            }
        };
        let mut keys = keys.take(MAX_MEMBERS);
        let mut names = Vec::new();
        while let Some(key) = keys.next().await {
            match key {
                Ok(key) => match decode_token(&key) {
                    Ok(name) => names.push(name),
                    Err(_) => tracing::debug!("a member key wot-nats did not write: ignored"),
                },
                Err(e) => {
                    return Err(self.error(&self.settings.members_bucket, "listing", "members", e));
                }
            }
        }
        // A key put again while it is being listed can come twice: count each member once.
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn error(
        &self,
        bucket: &str,
        what: &str,
        key: &str,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        // The client's kinds say "timed out" for every request that got no answer in time.
        let timed_out = e.to_string().contains("timed out");
        let key: String = key.chars().take(64).collect();
        if timed_out {
            return Error::new(Repr::Timeout {
                what: format!("{what} {key} in {bucket}"),
                after: self.settings.timeout,
            });
        }
        Error::key_value_from(bucket, format!("{what} {key}"), e)
    }
}
