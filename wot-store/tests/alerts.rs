//! The alert tables: an engine's state and changes round trip through the store.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde_json::json;
use wot_alerts::{
    AlertBatch, AlertState, AlertStore, Condition, Engine, OutboxEntry, OutboxOp, PropertyUpdate,
    Rule, SeriesKey, Silence,
};
use wot_store::{Batch, Store};

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wot-store-alerts-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn new_engine() -> Engine {
    let mut engine = Engine::new();
    engine
        .add_rule(Rule::new("warm", "*", "t", Condition::Gt(5.0)), t0())
        .unwrap();
    engine
}

/// An alert manager's batch of the engine's changes, without outbox operations.
fn batch_of(engine: &mut Engine) -> AlertBatch {
    let changes = engine.take_changes();
    AlertBatch::new(changes, Vec::new())
}

#[tokio::test]
async fn engine_state_survives_a_reopen_and_restores_an_engine() {
    let dir = dir("roundtrip");
    let store = Store::open(&dir).unwrap();
    let alerts = store.alerts();
    assert!(alerts.load().await.unwrap().is_none());

    let mut engine = new_engine();
    for (i, thing) in ["urn:dev:a", "urn:dev:b", "urn:dev:c"].iter().enumerate() {
        let value = if i == 2 { 1.0 } else { 9.0 };
        let _ = engine.update(t0(), &PropertyUpdate::new(*thing, "t", json!(value)));
    }
    engine
        .acknowledge(t0(), "warm", "urn:dev:a", "ops", Some("looking".into()))
        .unwrap();
    let silence = engine.add_silence(Silence::new(t0(), t0() + Duration::from_secs(3600)));
    alerts.commit(batch_of(&mut engine)).await.unwrap();

    // b cools down: its series changes again; only what changed is written.
    let _ = engine.update(
        t0() + Duration::from_secs(1),
        &PropertyUpdate::new("urn:dev:b", "t", json!(2.0)),
    );
    let changes = batch_of(&mut engine);
    assert!(changes.changes.series.len() < 3);
    alerts.commit(changes).await.unwrap();
    let expected = engine.state();
    drop(alerts);
    store.close().unwrap();

    let store = Store::open(&dir).unwrap();
    let loaded = store.alerts().load().await.unwrap().unwrap();
    assert!(loaded.outbox.is_empty());
    assert_eq!(loaded.state, expected);
    assert!(loaded.state.silences.contains_key(&silence));

    let mut restarted = new_engine();
    let report = restarted
        .restore(loaded.state, t0() + Duration::from_secs(2))
        .unwrap();
    assert_eq!(report.firing, 1);
    assert_eq!(report.acknowledged, 1);
    assert_eq!(report.silences, 1);
    let a = restarted.state().series[&SeriesKey::new("warm", "urn:dev:a")].clone();
    assert_eq!(a.alert.unwrap().state, AlertState::Firing);

    // Clearing forgets everything.
    let mut batch = Batch::new();
    batch.clear_alerts();
    store.commit(batch).await.unwrap();
    assert!(store.alerts().load().await.unwrap().is_none());
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn changes_of_another_engine_state_version_are_refused() {
    let dir = dir("version");
    let store = Store::open(&dir).unwrap();
    let mut engine = new_engine();
    let _ = engine.update(t0(), &PropertyUpdate::new("urn:dev:a", "t", json!(9.0)));
    let mut value = serde_json::to_value(batch_of(&mut engine)).unwrap();
    value["changes"]["version"] = json!(99);
    let batch: AlertBatch = serde_json::from_value(value).unwrap();
    assert!(store.alerts().commit(batch).await.is_err());
    assert!(store.alerts().load().await.unwrap().is_none());
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn outbox_entries_are_kept_until_marked_done() {
    let dir = dir("outbox");
    let store = Store::open(&dir).unwrap();
    let mut engine = new_engine();
    let fired = engine.update(t0(), &PropertyUpdate::new("urn:dev:a", "t", json!(9.0)));
    assert_eq!(fired.len(), 1);
    // An entry per action of the notification, as the manager writes them (built through
    // serde from the notification: the type is `non_exhaustive`).
    let entry = |action: &str| -> OutboxEntry {
        let mut value = serde_json::to_value(&fired[0]).unwrap();
        let object = value.as_object_mut().unwrap();
        object.insert("notification".into(), object["id"].clone());
        object.insert("action".into(), json!(action));
        serde_json::from_value(value).unwrap()
    };
    let (hook, mail) = (entry("hook"), entry("mail"));
    let changes = engine.take_changes();
    let batch = AlertBatch::new(
        changes,
        vec![
            OutboxOp::Add(Box::new(hook.clone())),
            OutboxOp::Add(Box::new(mail.clone())),
        ],
    );
    store.alerts().commit(batch).await.unwrap();
    // The hook ran; the process dies before the mail did.
    let done = AlertBatch::new(engine.take_changes(), vec![OutboxOp::Done(hook.key())]);
    store.alerts().commit(done).await.unwrap();
    drop(store);

    let store = Store::open(&dir).unwrap();
    let loaded = store.alerts().load().await.unwrap().unwrap();
    assert_eq!(loaded.outbox, vec![mail]);
    assert_eq!(loaded.state, engine.state());
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}
