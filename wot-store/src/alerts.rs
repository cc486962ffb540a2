//! Alert state and outbox: the store's side of [`wot_alerts::AlertStore`].
//!
//! One row per series (rule, Thing) in `alerts`, one per silence in `silences`, one per
//! undone action in `outbox`, and the engine's counters in `alert_meta`: a commit writes only
//! what changed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use wot_alerts::{
    AlertBatch, AlertStore, ENGINE_STATE_VERSION, EngineState, OutboxEntry, OutboxOp, SeriesState,
    Silence, SilenceId, StateError, StoreError, StoreFuture, StoredAlerts,
};

use crate::batch::Table;
use crate::store::{ALERT_META, ALERTS, Inner, OUTBOX, SILENCES, read_all};
use crate::{Batch, Error, Store, codec};

const HEADER: &[u8] = b"engine";

/// The engine's counters, stored beside its series.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    version: u32,
    instance: u64,
    now_ns: u64,
    next_alert_id: u64,
    next_notification_id: u64,
    next_silence_id: u64,
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    // Our own types and wot-alerts' state serialize to JSON without failing (string keys).
    serde_json::to_vec(value).unwrap_or_default()
}

impl Batch {
    /// Adds an alert manager's batch (state changes and outbox operations), so that it lands
    /// together with the rest of this batch.
    ///
    /// # Errors
    ///
    /// [`StateError::UnsupportedVersion`] when the changes are in another engine state
    /// version than this build stores ([`ENGINE_STATE_VERSION`]); nothing is added.
    pub fn push_alert_batch(&mut self, batch: &AlertBatch) -> Result<&mut Self, StateError> {
        let changes = &batch.changes;
        if changes.version != ENGINE_STATE_VERSION {
            return Err(StateError::UnsupportedVersion {
                found: changes.version,
                supported: ENGINE_STATE_VERSION,
            });
        }
        for key in &changes.removed_series {
            self.delete(Table::Alerts, json(key));
        }
        for series in &changes.series {
            self.put(Table::Alerts, json(&series.key()), json(series));
        }
        for id in &changes.removed_silences {
            self.delete(Table::Silences, id.get().to_be_bytes().to_vec());
        }
        for (id, silence) in &changes.silences {
            self.put(
                Table::Silences,
                id.get().to_be_bytes().to_vec(),
                json(silence),
            );
        }
        let header = Header {
            version: changes.version,
            instance: changes.instance,
            now_ns: codec::nanos(changes.now),
            next_alert_id: changes.next_alert_id,
            next_notification_id: changes.next_notification_id,
            next_silence_id: changes.next_silence_id,
        };
        self.put(Table::AlertMeta, HEADER.to_vec(), json(&header));
        for op in &batch.outbox {
            match op {
                OutboxOp::Add(entry) => self.put(Table::Outbox, json(&entry.key()), json(entry)),
                OutboxOp::Done(key) => self.delete(Table::Outbox, json(key)),
                // A kind of operation this build does not know: not written.
                _ => tracing::warn!("an alert outbox operation of an unknown kind was not stored"),
            }
        }
        Ok(self)
    }

    /// Forgets every alert series, silence, outbox entry and the engine's counters: the next
    /// manager starts from nothing.
    pub fn clear_alerts(&mut self) -> &mut Self {
        for table in [
            Table::Alerts,
            Table::Silences,
            Table::Outbox,
            Table::AlertMeta,
        ] {
            self.clear(table);
        }
        self
    }
}

/// A [`wot_alerts::AlertStore`] backed by a [`Store`], for
/// `AlertManagerBuilder::state_store`. Cheap to clone; every clone writes through the same
/// writer thread (each commit a batch of its own, group-committed with whatever else is
/// waiting).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use wot_alerts::AlertStore;
/// use wot_store::Store;
///
/// # let dir = std::env::temp_dir().join(format!("wot-store-alerts-doc-{}", std::process::id()));
/// let store = Store::open(&dir)?;
/// let for_the_manager: Arc<dyn AlertStore> = Arc::new(store.alerts());
/// # drop(for_the_manager); drop(store); std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), wot_store::Error>(())
/// ```
#[derive(Clone)]
pub struct Alerts {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts")
            .field("path", &self.inner.path)
            .finish()
    }
}

fn backend(e: Error) -> StoreError {
    StoreError::backend(e.to_string(), e)
}

impl Alerts {
    /// The stored state and undone outbox entries; `None` when no alert batch was ever
    /// committed. Reads the file on the calling thread (the [`AlertStore::load`] of this type
    /// does it on tokio's blocking pool).
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] when a row does not decode; [`Error::Version`] when the rows are in
    /// another engine state version; [`Error::Database`] when the file cannot be read.
    pub fn load_now(&self) -> Result<Option<StoredAlerts>, Error> {
        let inner = &self.inner;
        let corrupt = |what: &str, e: serde_json::Error| Error::Corrupt {
            path: inner.path.clone(),
            detail: format!("{what} does not decode: {e}"),
        };
        let meta = read_all(inner, ALERT_META)?;
        let Some((_, header)) = meta.iter().find(|(k, _)| k == HEADER) else {
            return Ok(None);
        };
        let header: Header = serde_json::from_slice(header)
            .map_err(|e| corrupt("the alert engine's counters", e))?;
        if header.version != ENGINE_STATE_VERSION {
            return Err(Error::Version {
                path: inner.path.clone(),
                found: u64::from(header.version),
                supported: u64::from(ENGINE_STATE_VERSION),
            });
        }
        let now = SystemTime::UNIX_EPOCH + Duration::from_nanos(header.now_ns);
        let mut state = EngineState::new(header.instance, now);
        state.next_alert_id = header.next_alert_id;
        state.next_notification_id = header.next_notification_id;
        state.next_silence_id = header.next_silence_id;
        let mut series = BTreeMap::new();
        for (_, v) in read_all(inner, ALERTS)? {
            let s: SeriesState =
                serde_json::from_slice(&v).map_err(|e| corrupt("an alert series", e))?;
            series.insert(s.key(), s);
        }
        state.series = series;
        for (k, v) in read_all(inner, SILENCES)? {
            let id = <[u8; 8]>::try_from(k.as_slice()).map_err(|_| Error::Corrupt {
                path: inner.path.clone(),
                detail: "a silence id is not 8 bytes".into(),
            })?;
            let silence: Silence =
                serde_json::from_slice(&v).map_err(|e| corrupt("a silence", e))?;
            state
                .silences
                .insert(SilenceId::from(u64::from_be_bytes(id)), silence);
        }
        let mut outbox = Vec::new();
        for (_, v) in read_all(inner, OUTBOX)? {
            let entry: OutboxEntry =
                serde_json::from_slice(&v).map_err(|e| corrupt("an outbox entry", e))?;
            outbox.push(entry);
        }
        Ok(Some(StoredAlerts::new(state, outbox)))
    }
}

impl AlertStore for Alerts {
    /// Reads the file on tokio's blocking pool when called inside a tokio runtime (on the
    /// calling thread otherwise).
    fn load(&self) -> StoreFuture<'_, Option<StoredAlerts>> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            let loaded = self.load_now().map_err(backend);
            return Box::pin(async move { loaded });
        };
        let this = self.clone();
        let path = self.inner.path.clone();
        let task = runtime.spawn_blocking(move || this.load_now());
        Box::pin(async move {
            task.await
                // A panic of the engine on a damaged file (or a cancelled runtime).
                .unwrap_or_else(|_| {
                    Err(Error::Corrupt {
                        path,
                        detail: "the database engine failed reading the alert state".into(),
                    })
                })
                .map_err(backend)
        })
    }

    fn commit(&self, alert_batch: AlertBatch) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut batch = Batch::new();
            batch.push_alert_batch(&alert_batch)?;
            self.inner
                .submit(batch)
                .await
                .map_err(backend)?
                .await
                .map_err(backend)
        })
    }
}

impl Store {
    /// The alert tables as a [`wot_alerts::AlertStore`].
    pub fn alerts(&self) -> Alerts {
        Alerts {
            inner: self.inner.clone(),
        }
    }
}
