//! A rule-driven alert engine and manager for W3C Web of Things property streams.
//!
//! Rules say when a property of a thing is in a bad state (`temperature > 8` for 30 s); the
//! [`Engine`] turns a stream of [`PropertyUpdate`]s plus the passage of time into alerts that go
//! pending, fire, escalate, get acknowledged and resolve, and into [`Notification`]s about them.
//! The engine does no I/O and takes time as an argument, so it is deterministic. The async
//! `AlertManager` runs it on tokio, drives its timer and runs actions (log, callback, webhook,
//! invoking a Thing's action).
//!
//! # Features
//!
//! - `manager` (default): the async `AlertManager` (tokio, futures).
//! - `http-actions` (default, implies `manager`): the `webhook` and `invoke_action` actions
//!   (reqwest).
//!
//! With `default-features = false` the crate is the pure engine: rules, rule files,
//! conditions, hold times, silences and the `testing` runner, without tokio or an HTTP client.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use wot_alerts::{Engine, Format, NotificationKind, PropertyUpdate, RuleSet};
//!
//! let rules = RuleSet::from_str(
//!     r#"
//! rules:
//!   - id: fridge-overheat
//!     thing: fridge-1
//!     property: temperature
//!     condition: { gt: 8 }
//!     clear: { le: 7 }
//!     summary: "{{thing}} is at {{value}}"
//! "#,
//!     Format::Yaml,
//!     "rules.yaml",
//! )?;
//! let t0 = SystemTime::UNIX_EPOCH;
//! let mut engine = Engine::new();
//! for rule in rules.rules() {
//!     engine.add_rule(rule.clone(), t0).expect("validated by RuleSet");
//! }
//! let n = engine.update(t0, &PropertyUpdate::new("fridge-1", "temperature", serde_json::json!(9.5)));
//! assert_eq!(n[0].kind, NotificationKind::Fired);
//! assert_eq!(n[0].summary(), "fridge-1 is at 9.5");
//! // 8 is not above 8, but hysteresis keeps the alert firing until the value is <= 7.
//! let t1 = t0 + Duration::from_secs(10);
//! assert!(engine.update(t1, &PropertyUpdate::new("fridge-1", "temperature", serde_json::json!(8))).is_empty());
//! # Ok::<(), wot_alerts::LoadError>(())
//! ```
//!
//! # Surviving a restart
//!
//! [`Engine::state`] saves what the engine must not forget (pending and firing alerts with
//! their times, acknowledgements, escalation, repeats, silences, and the series values and
//! times the conditions need) as a versioned serde value, [`EngineState`];
//! [`Engine::restore`] puts it back, following the restart rule documented there, and
//! [`Engine::take_changes`] gives only what changed, for a store that writes incrementally.
//! The `AlertManager` keeps it in an [`AlertStore`] with an outbox of the actions to run, so
//! a crash neither loses a notification nor sends one twice under a new id.
//!
//! See `docs/alerts.md` in the repository for the rule format and semantics.

// Input from the network or a file must never panic this crate: the panicking forms are
// denied outside tests (see "No panics in library code" in docs/reliability.md).
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

mod engine;
mod error;
#[cfg(feature = "http-actions")]
mod http_action;
mod limits;
mod load;
#[cfg(feature = "manager")]
mod manager;
mod rule;
mod state;
mod store;
mod td;
mod template;
pub mod testing;
#[cfg(feature = "http-actions")]
mod webhook;

pub use engine::{
    Acknowledgement, Alert, AlertState, Engine, Notification, NotificationId, PropertyUpdate,
    Silence, SilenceId,
};
pub use error::{Error, ErrorKind};
#[cfg(feature = "http-actions")]
pub use http_action::same_origin_redirects;
pub use limits::{Limits, escape_controls};
pub use load::{Format, LoadError, RuleSet};
#[cfg(feature = "manager")]
pub use manager::{
    ActionFailure, AlertManager, AlertManagerBuilder, BoxError, DEFAULT_ACTION_TIMEOUT,
    DEFAULT_COMMIT_INTERVAL, DEFAULT_COMMIT_TIMEOUT, DEFAULT_EVENTS_CAPACITY,
    DEFAULT_QUEUE_CAPACITY, MAX_EVENTS_CAPACITY, MAX_QUEUE_CAPACITY, ManagerEvent, Restored,
};
pub use rule::{
    ActionSpec, Compare, Condition, Escalation, NotificationKind, Pattern, RateCondition, Rule,
    Scalar, Severity, WebhookHeaders, WebhookUrl,
};
pub use state::{
    AlertRecord, DEFAULT_MAX_STATE_BYTES, ENGINE_STATE_VERSION, EngineState, MAX_SAVED_TIME_AHEAD,
    RestoreReport, SeriesKey, SeriesState, StateChanges, StateError,
};
pub use store::{
    AlertBatch, AlertStore, MemoryAlertStore, OutboxEntry, OutboxKey, OutboxOp, StoreError,
    StoreFuture, StoredAlerts,
};
pub use td::{TdFinding, check_rules_against_tds};

/// Dependency types that appear in this crate's signatures.
pub use http::{HeaderName, HeaderValue, StatusCode};
#[cfg(feature = "http-actions")]
pub use reqwest;
pub use url::Url;
