//! An `AlertManager` with a state store, crashed (dropped without `shutdown`) and started
//! again from the store: nothing notified twice, nothing lost, acknowledgements and silences
//! kept. The store here is the test's own, a pair of JSON files, so no database is involved;
//! webhooks go to a real HTTP server on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};
use wot_alerts::{
    AlertBatch, AlertManager, AlertState, AlertStore, EngineState, ErrorKind, Format, ManagerEvent,
    MemoryAlertStore, NotificationKind, OutboxEntry, OutboxOp, PropertyUpdate, RuleSet, Silence,
    StoreError, StoreFuture, StoredAlerts,
};

fn start() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn hot(v: f64) -> PropertyUpdate {
    PropertyUpdate::new("fridge-1", "temperature", json!(v))
}

/// A store in two JSON files: `state.json` (an `EngineState`) and `outbox.json`. Each commit
/// reads both, applies the batch and writes them again (a new file renamed over the old).
struct FileStore {
    dir: PathBuf,
    commits: AtomicUsize,
}

impl FileStore {
    fn new(name: &str) -> Arc<Self> {
        let dir = std::env::temp_dir().join(format!("wot-alerts-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Arc::new(FileStore {
            dir,
            commits: AtomicUsize::new(0),
        })
    }

    fn read(&self) -> Result<Option<StoredAlerts>, StoreError> {
        let Ok(state) = std::fs::read(self.dir.join("state.json")) else {
            return Ok(None);
        };
        let state = EngineState::from_json(&state, 64 << 20)?;
        let outbox = std::fs::read(self.dir.join("outbox.json"))
            .map_err(|e| StoreError::backend("reading outbox.json", e))?;
        let outbox: Vec<OutboxEntry> = serde_json::from_slice(&outbox)
            .map_err(|e| StoreError::backend("parsing outbox.json", e))?;
        Ok(Some(StoredAlerts::new(state, outbox)))
    }

    fn write(&self, batch: AlertBatch) -> Result<(), StoreError> {
        let (mut state, mut outbox) = match self.read()? {
            Some(s) => (s.state, s.outbox),
            None => (
                EngineState::new(batch.changes.instance, batch.changes.now),
                Vec::new(),
            ),
        };
        state.apply(&batch.changes)?;
        for op in batch.outbox {
            match op {
                OutboxOp::Add(entry) => outbox.push(*entry),
                OutboxOp::Done(key) => outbox.retain(|e| e.key() != key),
                _ => unreachable!(),
            }
        }
        replace(
            &self.dir.join("outbox.json"),
            &serde_json::to_vec(&outbox).unwrap(),
        )?;
        replace(&self.dir.join("state.json"), &state.to_json())?;
        self.commits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn outbox(&self) -> Vec<OutboxEntry> {
        self.read().unwrap().map(|s| s.outbox).unwrap_or_default()
    }
}

fn replace(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| StoreError::backend("writing", e))?;
    std::fs::rename(&tmp, path).map_err(|e| StoreError::backend("renaming", e))
}

impl AlertStore for FileStore {
    fn load(&self) -> StoreFuture<'_, Option<StoredAlerts>> {
        Box::pin(async move { self.read() })
    }

    fn commit(&self, batch: AlertBatch) -> StoreFuture<'_, ()> {
        Box::pin(async move { self.write(batch) })
    }
}

/// One request the webhook receiver got.
#[derive(Debug, Clone)]
struct Received {
    key: String,
    body: Value,
    accepted: bool,
}

/// A webhook receiver that answers 503 while `down`, and records every request.
#[derive(Clone, Default)]
struct Receiver {
    down: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Received>>>,
}

impl Respond for Receiver {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let accepted = !self.down.load(Ordering::SeqCst);
        let key = request
            .headers
            .get("idempotency-key")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        self.log.lock().unwrap().push(Received {
            key,
            body: serde_json::from_slice(&request.body).unwrap(),
            accepted,
        });
        ResponseTemplate::new(if accepted { 200 } else { 503 })
    }
}

impl Receiver {
    async fn start() -> (Self, MockServer) {
        let receiver = Receiver::default();
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(receiver.clone())
            .mount(&server)
            .await;
        (receiver, server)
    }

    fn log(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    /// (notification kind, id) of each accepted delivery, in order.
    fn delivered(&self) -> Vec<(String, String)> {
        self.log()
            .into_iter()
            .filter(|r| r.accepted)
            .map(|r| {
                let kind = r.body["commonAnnotations"]["notification"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                (kind, r.key)
            })
            .collect()
    }
}

/// Polls `done` every 10 ms for up to 10 s.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within 10 s: {what}");
}

fn rules(hook: &str) -> RuleSet {
    RuleSet::from_str(
        &format!(
            r#"
rules:
  - id: hot
    thing: fridge-1
    property: temperature
    condition: {{ gt: 8 }}
    actions: [hook]
  - id: door
    thing: fridge-1
    property: door
    condition: {{ eq: open }}
    actions: [hook]
actions:
  hook: {{ type: webhook, url: "{hook}/hook?token=s3cret" }}
"#
        ),
        Format::Yaml,
        "restart.yaml",
    )
    .unwrap()
}

#[tokio::test]
async fn a_crash_after_firing_repeats_nothing_and_keeps_acks_and_silences() {
    let (receiver, server) = Receiver::start().await;
    let store = FileStore::new("crash-after-firing");

    let (tx, rx) = mpsc::channel(8);
    let (manager, restored) = AlertManager::builder(rules(&server.uri()))
        .state_store(store.clone())
        .start_restored(ReceiverStream::new(rx))
        .await
        .unwrap();
    assert_eq!(restored.report, None, "an empty store");
    tx.send(hot(12.0)).await.unwrap();
    eventually("the fired webhook", || receiver.delivered().len() == 1).await;
    eventually("its outbox entry done", || store.outbox().is_empty()).await;
    manager
        .acknowledge("hot", "fridge-1", "ops", Some("on it".into()))
        .unwrap();
    let silence = manager.add_silence(
        Silence::new(manager.now(), manager.now() + Duration::from_secs(86_400)).rule("door"),
    );
    manager.flush().await.unwrap();
    eventually("the acknowledged webhook", || {
        receiver.delivered().len() == 2
    })
    .await;
    eventually("its outbox entry done", || store.outbox().is_empty()).await;
    drop(manager); // the crash: no shutdown

    let (tx, rx) = mpsc::channel(8);
    let (manager, restored) = AlertManager::builder(rules(&server.uri()))
        .state_store(store.clone())
        .start_restored(ReceiverStream::new(rx))
        .await
        .unwrap();
    let report = restored.report.unwrap();
    assert_eq!(
        (report.firing, report.acknowledged, report.silences),
        (1, 1, 1)
    );
    assert_eq!(restored.resent, 0);
    let alerts = manager.active_alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].state, AlertState::Firing);
    let ack = alerts[0].acknowledgement.as_ref().unwrap();
    assert_eq!(
        (ack.by.as_str(), ack.comment.as_deref()),
        ("ops", Some("on it"))
    );
    assert_eq!(manager.silences()[0].0, silence);

    // Still hot: no new notification; the door opens: silenced.
    let mut events = Box::pin(manager.subscribe());
    tx.send(hot(13.0)).await.unwrap();
    tx.send(PropertyUpdate::new("fridge-1", "door", json!("open")))
        .await
        .unwrap();
    manager.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let event = futures_util::FutureExt::now_or_never(events.next());
    assert!(
        event.is_none(),
        "no notification after the restart: {event:?}"
    );
    let delivered = receiver.delivered();
    let kinds: Vec<&str> = delivered.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["fired", "acknowledged"]);
    assert_ne!(delivered[0].1, delivered[1].1, "one id per notification");
    assert!(receiver.log().iter().all(|r| r.accepted));

    // The alert resolves: one notification, with an id never sent before.
    tx.send(hot(3.0)).await.unwrap();
    eventually("the resolved webhook", || receiver.delivered().len() == 3).await;
    let resolved = &receiver.log()[2];
    assert_eq!(resolved.body["status"], "resolved");
    assert_eq!(resolved.body["notificationId"], resolved.key.as_str());
    assert!(delivered.iter().all(|(_, key)| *key != resolved.key));
    assert_eq!(manager.shutdown(Duration::from_secs(5)).await, []);
    let _ = std::fs::remove_dir_all(&store.dir);
}

#[tokio::test]
async fn a_webhook_queued_at_a_crash_is_delivered_once_after_the_restart() {
    let (receiver, server) = Receiver::start().await;
    receiver.down.store(true, Ordering::SeqCst);
    let store = FileStore::new("queued-at-crash");

    let (tx, rx) = mpsc::channel(8);
    let (manager, _) = AlertManager::builder(rules(&server.uri()))
        .state_store(store.clone())
        .retries(1000)
        .backoff(Duration::from_millis(20))
        .start_restored(ReceiverStream::new(rx))
        .await
        .unwrap();
    tx.send(hot(12.0)).await.unwrap();
    // Committed before it was sent, and not done while the receiver refuses it.
    eventually("two refused attempts", || receiver.log().len() >= 2).await;
    let outbox = store.outbox();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].kind, NotificationKind::Fired);
    assert_eq!(outbox[0].action, "hook");
    drop(manager); // the crash, in the middle of the retries

    receiver.down.store(false, Ordering::SeqCst);
    let (_tx, rx) = mpsc::channel(8);
    let (manager, restored) = AlertManager::builder(rules(&server.uri()))
        .state_store(store.clone())
        .start_restored(ReceiverStream::new(rx))
        .await
        .unwrap();
    assert_eq!(restored.resent, 1);
    eventually("the delivery", || receiver.delivered().len() == 1).await;
    eventually("its outbox entry done", || store.outbox().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let log = receiver.log();
    let id = outbox[0].notification.to_string();
    assert!(
        log.iter().all(|r| r.key == id),
        "every attempt has the same id"
    );
    assert!(log.iter().all(|r| r.body["notificationId"] == id.as_str()));
    assert_eq!(
        log.iter().filter(|r| r.accepted).count(),
        1,
        "delivered once"
    );
    assert_eq!(manager.active_alerts()[0].state, AlertState::Firing);
    drop(manager);
    let _ = std::fs::remove_dir_all(&store.dir);
}

#[tokio::test]
async fn shutdown_leaves_undelivered_jobs_in_the_outbox_for_the_next_start() {
    let (receiver, server) = Receiver::start().await;
    receiver.down.store(true, Ordering::SeqCst);
    let store = Arc::new(MemoryAlertStore::new());

    let (tx, rx) = mpsc::channel(8);
    let (manager, _) = AlertManager::builder(rules(&server.uri()))
        .state_store(store.clone())
        .retries(1000)
        .backoff(Duration::from_millis(20))
        .start_restored(ReceiverStream::new(rx))
        .await
        .unwrap();
    tx.send(hot(12.0)).await.unwrap();
    eventually("a refused attempt", || !receiver.log().is_empty()).await;
    let undelivered = manager.shutdown(Duration::from_millis(50)).await;
    assert_eq!(undelivered.len(), 1);
    assert_eq!(undelivered[0].error.kind(), ErrorKind::Shutdown);
    let saved = store.snapshot().unwrap();
    assert_eq!(saved.outbox.len(), 1);
    assert_eq!(saved.state.series.len(), 1);

    receiver.down.store(false, Ordering::SeqCst);
    let (_tx, rx) = mpsc::channel(8);
    let (manager, restored) = AlertManager::builder(rules(&server.uri()))
        .state_store(store.clone())
        .start_restored(ReceiverStream::new(rx))
        .await
        .unwrap();
    assert_eq!(restored.resent, 1);
    eventually("the delivery", || receiver.delivered().len() == 1).await;
    assert_eq!(manager.shutdown(Duration::from_secs(5)).await, []);
    assert!(store.snapshot().unwrap().outbox.is_empty());
}

/// Counts the notifications a callback action gets, by kind and time.
type Seen = Arc<Mutex<Vec<(NotificationKind, SystemTime)>>>;

async fn counting_manager(
    store: Arc<MemoryAlertStore>,
    start_time: SystemTime,
    seen: &Seen,
) -> (AlertManager, mpsc::Sender<PropertyUpdate>) {
    let rules = RuleSet::from_str(
        "rules: [{ id: hot, thing: fridge-1, property: temperature, condition: { gt: 8 }, for: 30s, actions: [count] }]\nactions: { count: { type: callback } }",
        Format::Yaml,
        "hold.yaml",
    )
    .unwrap();
    let seen = seen.clone();
    let (tx, rx) = mpsc::channel(8);
    let (manager, _) = AlertManager::builder(rules)
        .state_store(store)
        .start_time(start_time)
        .callback("count", move |n| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push((n.kind, n.at));
                Ok(())
            }
        })
        .start_restored(ReceiverStream::new(rx))
        .await
        .unwrap();
    (manager, tx)
}

#[tokio::test(start_paused = true)]
async fn a_pending_alert_keeps_its_hold_across_a_manager_restart() {
    let seen = Seen::default();
    let store = Arc::new(MemoryAlertStore::new());
    let (manager, tx) = counting_manager(store.clone(), start(), &seen).await;
    tx.send(hot(12.0)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    manager.flush().await.unwrap();
    drop(manager);

    // Back 20 s after the start, mid-hold: it fires when the hold ends, 30 s after the start.
    let (manager, _tx) =
        counting_manager(store.clone(), start() + Duration::from_secs(20), &seen).await;
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert!(seen.lock().unwrap().is_empty());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        *seen.lock().unwrap(),
        [(NotificationKind::Fired, start() + Duration::from_secs(30))]
    );
    manager.flush().await.unwrap();
    drop(manager);

    // Firing across another restart: not notified again.
    let (manager, _tx) =
        counting_manager(store.clone(), start() + Duration::from_secs(600), &seen).await;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(seen.lock().unwrap().len(), 1);
    drop(manager);

    // A restart longer than the hold: fires at once. The pending alert reaches the store
    // without a flush, within the commit interval (1 s).
    let store = Arc::new(MemoryAlertStore::new());
    let seen = Seen::default();
    let (manager, tx) = counting_manager(store.clone(), start(), &seen).await;
    tx.send(hot(12.0)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(manager);
    assert_eq!(store.snapshot().unwrap().state.series.len(), 1);
    let restart = start() + Duration::from_secs(3600);
    let (manager, _tx) = counting_manager(store.clone(), restart, &seen).await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(*seen.lock().unwrap(), [(NotificationKind::Fired, restart)]);
    drop(manager);
}

/// A store whose commits fail while `failing` is set.
struct Flaky {
    inner: MemoryAlertStore,
    failing: AtomicBool,
}

impl AlertStore for Flaky {
    fn load(&self) -> StoreFuture<'_, Option<StoredAlerts>> {
        self.inner.load()
    }

    fn commit(&self, batch: AlertBatch) -> StoreFuture<'_, ()> {
        if self.failing.load(Ordering::SeqCst) {
            let e = std::io::Error::other("disk full");
            return Box::pin(async move { Err(StoreError::backend("commit", e)) });
        }
        self.inner.commit(batch)
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_commit_is_reported_and_tried_again() {
    let store = Arc::new(Flaky {
        inner: MemoryAlertStore::new(),
        failing: AtomicBool::new(true),
    });
    let rules = RuleSet::from_str(
        "rules: [{ id: hot, thing: fridge-1, property: temperature, condition: { gt: 8 } }]",
        Format::Yaml,
        "flaky.yaml",
    )
    .unwrap();
    let (tx, rx) = mpsc::channel(8);
    let (manager, _) = AlertManager::builder(rules)
        .state_store(store.clone())
        .start_restored(ReceiverStream::new(rx))
        .await
        .unwrap();
    let mut events = Box::pin(manager.subscribe());
    tx.send(hot(12.0)).await.unwrap();
    let mut failed = false;
    let mut notified = false;
    while !(failed && notified) {
        match events.next().await.unwrap() {
            ManagerEvent::StoreFailed(e) => {
                assert_eq!(e.kind(), ErrorKind::Store);
                assert!(format!("{:?}", e).contains("disk full"));
                failed = true;
            }
            ManagerEvent::Notification(n) => {
                assert_eq!(n.kind, NotificationKind::Fired);
                notified = true;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(manager.flush().await.unwrap_err().kind(), ErrorKind::Store);
    assert!(store.inner.snapshot().is_none());
    store.failing.store(false, Ordering::SeqCst);
    manager.flush().await.unwrap();
    let saved = store.inner.snapshot().unwrap();
    let alert = saved
        .state
        .series
        .values()
        .next()
        .unwrap()
        .alert
        .as_ref()
        .unwrap();
    assert_eq!(alert.state, AlertState::Firing);
    drop(manager);
}

#[tokio::test]
async fn a_state_of_another_version_is_refused_at_start() {
    let store = FileStore::new("other-version");
    std::fs::write(store.dir.join("state.json"), br#"{"version": 99}"#).unwrap();
    std::fs::write(store.dir.join("outbox.json"), b"[]").unwrap();
    let err = AlertManager::builder(rules("http://127.0.0.1:9"))
        .state_store(store.clone())
        .start_restored(futures_util::stream::empty())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(
        source.contains("version 99") && source.contains("version 1"),
        "{source}"
    );
    // `start` does not load a store: refused, naming the setting.
    let err = AlertManager::builder(rules("http://127.0.0.1:9"))
        .state_store(store.clone())
        .start(futures_util::stream::empty())
        .unwrap_err();
    assert_eq!(err.setting(), Some("state_store"));
    let _ = std::fs::remove_dir_all(&store.dir);
}

/// A store whose commits never finish.
struct Stuck;

impl AlertStore for Stuck {
    fn load(&self) -> StoreFuture<'_, Option<StoredAlerts>> {
        Box::pin(async { Ok(None) })
    }

    fn commit(&self, _: AlertBatch) -> StoreFuture<'_, ()> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test(start_paused = true)]
async fn a_hung_store_delays_notifications_by_the_commit_timeout_at_most() {
    let seen = Seen::default();
    let rules = RuleSet::from_str(
        "rules: [{ id: hot, thing: fridge-1, property: temperature, condition: { gt: 8 }, actions: [count] }]\nactions: { count: { type: callback } }",
        Format::Yaml,
        "hung.yaml",
    )
    .unwrap();
    let (tx, rx) = mpsc::channel(8);
    let counted = seen.clone();
    let (manager, _) = AlertManager::builder(rules)
        .state_store(Arc::new(Stuck))
        .start_time(start())
        .commit_timeout(Duration::from_secs(5))
        .callback("count", move |n| {
            let seen = counted.clone();
            async move {
                seen.lock().unwrap().push((n.kind, n.at));
                Ok(())
            }
        })
        .start_restored(ReceiverStream::new(rx))
        .await
        .unwrap();
    let mut events = Box::pin(manager.subscribe());
    let began = tokio::time::Instant::now();
    tx.send(hot(12.0)).await.unwrap();
    let ManagerEvent::StoreFailed(e) = events.next().await.unwrap() else {
        panic!("the commit times out first")
    };
    assert_eq!(e.kind(), ErrorKind::Store);
    assert_eq!(began.elapsed(), Duration::from_secs(5));
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(
        *seen.lock().unwrap(),
        [(NotificationKind::Fired, start())],
        "delivered after the timeout"
    );
    // The shutdown does not wait for the store past its deadline (and at least 1 s).
    let began = tokio::time::Instant::now();
    assert_eq!(manager.shutdown(Duration::from_millis(100)).await, []);
    assert!(
        began.elapsed() <= Duration::from_secs(1),
        "{:?}",
        began.elapsed()
    );
}

/// A manager with a `*` rule held for a minute and a commit interval of an hour: only what is
/// committed at once reaches the store before the crash.
async fn lazy_manager(
    store: Arc<MemoryAlertStore>,
    start_time: SystemTime,
) -> (AlertManager, mpsc::Sender<PropertyUpdate>) {
    let rules = RuleSet::from_str(
        "rules: [{ id: hot, thing: '*', property: temperature, condition: { gt: 8 }, for: 60s }]",
        Format::Yaml,
        "lazy.yaml",
    )
    .unwrap();
    let (tx, rx) = mpsc::channel(8);
    let (manager, _) = AlertManager::builder(rules)
        .state_store(store)
        .start_time(start_time)
        .commit_interval(Duration::from_secs(3600))
        .start_restored(ReceiverStream::new(rx))
        .await
        .unwrap();
    (manager, tx)
}

#[tokio::test(start_paused = true)]
async fn a_pending_alert_id_is_never_given_again_after_a_crash_before_the_commit_interval() {
    let store = Arc::new(MemoryAlertStore::new());
    let (manager, tx) = lazy_manager(store.clone(), start()).await;
    tx.send(PropertyUpdate::new("fridge-1", "temperature", json!(12.0)))
        .await
        .unwrap();
    // A millisecond: far within the commit interval, and no notification (it is pending).
    tokio::time::sleep(Duration::from_millis(1)).await;
    let shown = manager.active_alerts();
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].state, AlertState::Pending);
    let shown_id = shown[0].id;
    drop(manager); // the crash, before the commit interval ended

    let saved = store
        .snapshot()
        .expect("the new alert was committed at once");
    assert!(saved.state.next_alert_id > shown_id);
    let (manager, tx) = lazy_manager(store.clone(), start() + Duration::from_secs(5)).await;
    tx.send(PropertyUpdate::new("fridge-2", "temperature", json!(12.0)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    let alerts = manager.active_alerts();
    assert_eq!(alerts.len(), 2);
    let restored = alerts.iter().find(|a| a.thing == "fridge-1").unwrap();
    let new = alerts.iter().find(|a| a.thing == "fridge-2").unwrap();
    assert_eq!(restored.id, shown_id);
    assert!(new.id > shown_id, "{} reused after the crash", new.id);
    drop(manager);
}
