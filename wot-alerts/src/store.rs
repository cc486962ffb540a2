//! Where the `AlertManager` keeps its state: the [`AlertStore`] trait, implemented by a
//! database crate (or [`MemoryAlertStore`]), and what goes through it.
//!
//! The manager commits, in one [`AlertBatch`], the engine's [`StateChanges`] together with an
//! *outbox*: one [`OutboxEntry`] per action to run for each new notification, written before
//! the action runs, and an [`OutboxOp::Done`] once it has run. At start it loads the state and
//! the entries not done, restores the state and runs those entries again. So an action is
//! never lost to a crash, and is repeated only if the process died between running it and
//! committing that it ran; webhooks carry the notification's id so that a receiver can drop
//! such a repeat.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::engine::{Alert, NotificationId};
use crate::rule::{NotificationKind, Severity};
use crate::state::{EngineState, StateChanges, StateError};

/// The future an [`AlertStore`] returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Durable storage for an `AlertManager`'s state and outbox.
///
/// Implementations must make each [`commit`](Self::commit) atomic (all of the batch or none of
/// it) and durable when its future resolves, and apply batches in the order they were
/// committed. The manager commits one batch at a time.
pub trait AlertStore: Send + Sync + 'static {
    /// The saved state (all batches committed so far applied, with [`EngineState::apply`]
    /// after an [`EngineState::new`] for the first) and the outbox entries not marked done,
    /// in any order; `None` when nothing was ever committed.
    fn load(&self) -> StoreFuture<'_, Option<StoredAlerts>>;

    /// Commits one batch: applies its changes to the saved state, adds its new outbox entries
    /// and removes those it marks done (a `Done` for an unknown entry is ignored).
    fn commit(&self, batch: AlertBatch) -> StoreFuture<'_, ()>;
}

/// What an [`AlertStore`] loads: the engine state and the outbox entries not done.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StoredAlerts {
    /// The engine state.
    pub state: EngineState,
    /// The actions not marked done.
    pub outbox: Vec<OutboxEntry>,
}

impl StoredAlerts {
    /// A loaded state and outbox.
    pub fn new(state: EngineState, outbox: Vec<OutboxEntry>) -> Self {
        StoredAlerts { state, outbox }
    }
}

/// One atomic write of an `AlertManager`: state changes and outbox operations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AlertBatch {
    /// What changed in the engine since the previous batch.
    pub changes: StateChanges,
    /// Outbox entries added and marked done, in order.
    pub outbox: Vec<OutboxOp>,
}

impl AlertBatch {
    /// A batch of `changes` and `outbox` operations.
    pub fn new(changes: StateChanges, outbox: Vec<OutboxOp>) -> Self {
        AlertBatch { changes, outbox }
    }
}

/// A change to the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OutboxOp {
    /// An action to run for a notification, saved before it runs.
    Add(Box<OutboxEntry>),
    /// The action ran: it succeeded, or failed and was reported (`ManagerEvent::ActionFailed`).
    Done(OutboxKey),
}

/// Identifies an outbox entry: one action of one notification.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OutboxKey {
    /// The notification.
    pub notification: NotificationId,
    /// The action's name.
    pub action: String,
}

impl OutboxKey {
    /// The key of `action` for `notification`.
    pub fn new(notification: NotificationId, action: impl Into<String>) -> Self {
        OutboxKey {
            notification,
            action: action.into(),
        }
    }
}

/// An action to run for a notification, with what it needs to run after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OutboxEntry {
    /// The notification's id.
    pub notification: NotificationId,
    /// The action's name.
    pub action: String,
    /// What happened.
    pub kind: NotificationKind,
    /// When (engine time).
    pub at: SystemTime,
    /// For a repeated `fired` notification, how many repeats so far; else 0.
    pub repeat: u32,
    /// For `severity_changed`, the severity before.
    pub previous_severity: Option<Severity>,
    /// The alert as of the notification.
    pub alert: Alert,
    /// The unit of the property, when known.
    pub unit: Option<String>,
}

impl OutboxEntry {
    /// This entry's key.
    pub fn key(&self) -> OutboxKey {
        OutboxKey::new(self.notification, self.action.clone())
    }
}

/// Why an [`AlertStore`] failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The saved state was refused (another version, say).
    #[error(transparent)]
    State(#[from] StateError),
    /// The storage failed; the cause is the source.
    #[error("alert store: {message}")]
    Backend {
        /// What failed, e.g. `commit to /var/lib/app/state.redb`.
        message: String,
        /// The cause.
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
}

impl StoreError {
    /// A storage failure described by `message`, caused by `source`.
    pub fn backend(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        StoreError::Backend {
            message: message.into(),
            source: Some(Arc::from(source.into())),
        }
    }
}

/// An [`AlertStore`] in memory: survives a manager (share it through an [`Arc`] with the next
/// one), not the process. For tests and applications that restart their manager in process.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use wot_alerts::{AlertStore, MemoryAlertStore};
///
/// let store = Arc::new(MemoryAlertStore::new());
/// let for_the_manager: Arc<dyn AlertStore> = store.clone();
/// # drop(for_the_manager);
/// assert!(store.snapshot().is_none());
/// ```
#[derive(Debug, Default)]
pub struct MemoryAlertStore {
    inner: Mutex<Option<Saved>>,
}

#[derive(Debug)]
struct Saved {
    state: EngineState,
    outbox: BTreeMap<OutboxKey, OutboxEntry>,
}

impl MemoryAlertStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryAlertStore::default()
    }

    /// What [`load`](AlertStore::load) would return now.
    pub fn snapshot(&self) -> Option<StoredAlerts> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .as_ref()
            .map(|s| StoredAlerts::new(s.state.clone(), s.outbox.values().cloned().collect()))
    }

    fn commit_now(&self, batch: AlertBatch) -> Result<(), StoreError> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let saved = inner.get_or_insert_with(|| Saved {
            state: EngineState::new(batch.changes.instance, batch.changes.now),
            outbox: BTreeMap::new(),
        });
        saved.state.apply(&batch.changes)?;
        for op in batch.outbox {
            match op {
                OutboxOp::Add(entry) => {
                    saved.outbox.insert(entry.key(), *entry);
                }
                OutboxOp::Done(key) => {
                    saved.outbox.remove(&key);
                }
            }
        }
        Ok(())
    }
}

impl AlertStore for MemoryAlertStore {
    fn load(&self) -> StoreFuture<'_, Option<StoredAlerts>> {
        let snapshot = self.snapshot();
        Box::pin(async move { Ok(snapshot) })
    }

    fn commit(&self, batch: AlertBatch) -> StoreFuture<'_, ()> {
        let result = self.commit_now(batch);
        Box::pin(async move { result })
    }
}
