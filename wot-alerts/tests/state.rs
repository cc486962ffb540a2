//! Saving and restoring the engine's state: the restart rule stepped through explicit clocks,
//! the version check, hostile saved state, and incremental changes.

use std::time::{Duration, SystemTime};

use serde_json::json;
use wot_alerts::{
    AlertState, Condition, ENGINE_STATE_VERSION, Engine, EngineState, Escalation,
    MAX_SAVED_TIME_AHEAD, NotificationKind, PropertyUpdate, Rule, Scalar, Severity, Silence,
    SilenceId, StateError,
};

const LIMIT: u64 = 64 << 20;

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn hot(v: f64) -> PropertyUpdate {
    PropertyUpdate::new("fridge-1", "temperature", json!(v))
}

fn rule_for(hold: u64) -> Rule {
    let mut rule = Rule::new("hot", "fridge-1", "temperature", Condition::Gt(8.0));
    rule.hold_for = Duration::from_secs(hold);
    rule
}

fn engine_with(rules: &[Rule], now: SystemTime) -> Engine {
    let mut engine = Engine::new();
    for r in rules {
        engine.add_rule(r.clone(), now).unwrap();
    }
    engine
}

/// Saves `engine` through JSON and restores it into a new engine with `rules` at `now`.
fn restart(engine: &Engine, rules: &[Rule], now: SystemTime) -> Engine {
    let saved = engine.state().to_json();
    let state = EngineState::from_json(&saved, LIMIT).unwrap();
    assert_eq!(
        state,
        engine.state(),
        "the JSON round trip keeps everything"
    );
    let mut fresh = engine_with(rules, now);
    fresh.restore(state, now).unwrap();
    fresh
}

#[test]
fn a_restart_in_the_middle_of_a_hold_fires_when_the_hold_ends() {
    let rules = [rule_for(30)];
    let mut engine = engine_with(&rules, t(0));
    assert!(engine.update(t(0), &hot(12.0)).is_empty());
    let mut engine = restart(&engine, &rules, t(10));
    let pending = engine.active_alerts();
    assert_eq!(pending[0].state, AlertState::Pending);
    assert_eq!(pending[0].active_since, t(0), "pending-since is kept");
    assert!(engine.tick(t(10)).is_empty());
    assert_eq!(engine.next_deadline(), Some(t(30)));
    assert!(engine.tick(t(29)).is_empty());
    let fired = engine.tick(t(30));
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].kind, NotificationKind::Fired);
    assert_eq!(fired[0].alert.fired_at, Some(t(30)));
}

#[test]
fn a_restart_longer_than_the_hold_fires_at_the_first_evaluation() {
    let rules = [rule_for(30)];
    let mut engine = engine_with(&rules, t(0));
    assert!(engine.update(t(0), &hot(12.0)).is_empty());
    let alert_id = engine.active_alerts()[0].id;
    let mut engine = restart(&engine, &rules, t(600));
    assert_eq!(engine.next_deadline(), Some(t(600)));
    let fired = engine.tick(t(600));
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].alert.id, alert_id);
    assert_eq!(fired[0].alert.active_since, t(0));
    assert_eq!(fired[0].alert.fired_at, Some(t(600)));

    // The same with an update as the first evaluation: it fires on the last value seen before
    // the restart, before the update is recorded.
    let mut engine = engine_with(&rules, t(0));
    let _ = engine.update(t(0), &hot(12.0));
    let mut engine = restart(&engine, &rules, t(600));
    let n = engine.update(t(601), &hot(3.0));
    let kinds: Vec<_> = n.iter().map(|n| (n.kind, n.at)).collect();
    assert_eq!(
        kinds,
        [
            (NotificationKind::Fired, t(600)),
            (NotificationKind::Resolved, t(601))
        ]
    );
}

#[test]
fn a_pending_alert_whose_condition_stopped_at_the_restart_does_not_fire() {
    let rules = [rule_for(30)];
    let mut engine = engine_with(&rules, t(0));
    let _ = engine.update(t(0), &hot(12.0));
    let mut engine = restart(&engine, &rules, t(600));
    // A sample at the restart time comes before the evaluation at that time.
    assert!(engine.update(t(600), &hot(3.0)).is_empty());
    assert!(engine.active_alerts().is_empty());
    assert!(engine.tick(t(10_000)).is_empty());
}

#[test]
fn a_firing_alert_survives_without_a_second_notification() {
    let mut rule = rule_for(0);
    rule.clear = Some(Condition::Le(7.0));
    rule.escalate = vec![Escalation {
        condition: Condition::Gt(20.0),
        severity: Severity::Critical,
    }];
    let rules = [rule];
    let mut engine = engine_with(&rules, t(0));
    let fired = engine.update(t(0), &hot(25.0));
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].alert.severity, Severity::Critical);
    let before = engine.active_alerts();

    let mut engine = restart(&engine, &rules, t(3600));
    assert_eq!(
        engine.active_alerts(),
        before,
        "the same alert, summary and labels"
    );
    assert!(engine.tick(t(3600)).is_empty());
    assert!(engine.tick(t(7200)).is_empty());
    // Hysteresis: 8 does not clear (the clear condition is <= 7); escalation goes back down.
    let n = engine.update(t(7201), &hot(8.0));
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].kind, NotificationKind::SeverityChanged);
    assert_eq!(n[0].previous_severity, Some(Severity::Critical));
    let resolved = engine.update(t(7202), &hot(7.0));
    assert_eq!(resolved[0].kind, NotificationKind::Resolved);
    assert_eq!(resolved[0].alert.id, before[0].id);
    assert_eq!(resolved[0].alert.fired_at, Some(t(0)));
}

#[test]
fn acknowledgements_and_silences_survive() {
    let mut rule = rule_for(0);
    rule.repeat_interval = Some(Duration::from_secs(60));
    let mut other = Rule::new(
        "door",
        "fridge-1",
        "door",
        Condition::Eq(Scalar::String("open".into())),
    );
    other.repeat_interval = Some(Duration::from_secs(60));
    let rules = [rule, other];
    let mut engine = engine_with(&rules, t(0));
    let silence = engine.add_silence(
        Silence::new(t(0), t(10_000))
            .rule("door")
            .comment("maintenance"),
    );
    let expired = engine.add_silence(Silence::new(t(0), t(1)));
    assert!(engine.remove_silence(expired).is_some());
    assert_eq!(engine.update(t(1), &hot(12.0)).len(), 1);
    assert!(
        engine
            .update(
                t(1),
                &PropertyUpdate::new("fridge-1", "door", json!("open"))
            )
            .is_empty(),
        "silenced"
    );
    let acked = engine
        .acknowledge(t(2), "hot", "fridge-1", "ops", Some("on it".into()))
        .unwrap();
    assert_eq!(acked[0].kind, NotificationKind::Acknowledged);

    let mut engine = restart(&engine, &rules, t(100));
    let ack = engine.active_alerts()[1].acknowledgement.clone().unwrap();
    assert_eq!((ack.by.as_str(), ack.at), ("ops", t(2)));
    assert_eq!(ack.comment.as_deref(), Some("on it"));
    let silences: Vec<_> = engine.silences().map(|(id, s)| (id, s.clone())).collect();
    assert_eq!(silences.len(), 1);
    assert_eq!(silences[0].0, silence);
    assert_eq!(silences[0].1.comment.as_deref(), Some("maintenance"));
    // Acknowledged: no repeat; silenced: its repeats are not notified either.
    assert!(engine.tick(t(100)).is_empty());
    assert!(engine.tick(t(1000)).is_empty());
    // New silence ids continue after the restored ones (the removed one included).
    let next = engine.add_silence(Silence::new(t(0), t(1)));
    assert_eq!(next, SilenceId::from(3));
    // The silence ends: the door alert's repeats are notified again.
    let repeats = engine.tick(t(10_000));
    assert_eq!(repeats.len(), 1);
    assert_eq!(repeats[0].alert.rule, "door");
}

#[test]
fn repeat_interval_counts_across_a_restart() {
    let mut rule = rule_for(0);
    rule.repeat_interval = Some(Duration::from_secs(60));
    let rules = [rule];
    let mut engine = engine_with(&rules, t(0));
    assert_eq!(engine.update(t(0), &hot(12.0)).len(), 1);

    // Restarted before the repeat is due: it comes at its time, not a minute after the restart.
    let mut short = restart(&engine, &rules, t(30));
    assert!(short.tick(t(30)).is_empty());
    assert_eq!(short.next_deadline(), Some(t(60)));
    let repeat = short.tick(t(60));
    assert_eq!(
        (repeat[0].kind, repeat[0].repeat),
        (NotificationKind::Fired, 1)
    );

    // Restarted after three intervals: one repeat at the restart, counting the skipped ones.
    let mut long = restart(&engine, &rules, t(200));
    let repeat = long.tick(t(200));
    assert_eq!(repeat.len(), 1);
    assert_eq!((repeat[0].at, repeat[0].repeat), (t(200), 3));
    assert_eq!(long.next_deadline(), Some(t(260)));
}

#[test]
fn no_data_counts_from_the_restart_unless_an_alert_exists() {
    let mut quiet = Rule::new(
        "quiet",
        "*",
        "temperature",
        Condition::NoData(Duration::from_secs(60)),
    );
    quiet.hold_for = Duration::ZERO;
    let rules = [quiet];
    let mut engine = engine_with(&rules, t(0));
    let _ = engine.update(t(0), &PropertyUpdate::new("a", "temperature", json!(1)));
    let _ = engine.update(t(50), &PropertyUpdate::new("b", "temperature", json!(1)));
    let fired = engine.tick(t(60));
    assert_eq!(fired.len(), 1, "a went quiet");
    assert_eq!(fired[0].alert.thing, "a");

    // Down from 70 to 1000: b has no alert, so its no-data deadline starts again at 1000.
    let mut engine = restart(&engine, &rules, t(1000));
    assert!(engine.tick(t(1000)).is_empty());
    assert_eq!(engine.active_alerts().len(), 1, "a stays firing");
    assert!(engine.tick(t(1059)).is_empty());
    let fired = engine.tick(t(1060));
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].alert.thing, "b");
    // a resolves when data arrives, not before.
    let resolved = engine.update(t(1100), &PropertyUpdate::new("a", "temperature", json!(1)));
    assert_eq!(resolved[0].kind, NotificationKind::Resolved);
    assert_eq!(resolved[0].alert.thing, "a");
}

#[test]
fn rate_samples_and_changed_survive() {
    let mut rate: Rule = serde_json::from_value(json!({
        "id": "rising", "thing": "fridge-1", "property": "temperature",
        "condition": { "rate": { "per": "1m", "gt": 5 } }
    }))
    .unwrap();
    rate.hold_for = Duration::ZERO;
    let changed = Rule::new("moved", "fridge-1", "temperature", Condition::Changed(true));
    let rules = [rate, changed];
    let mut engine = engine_with(&rules, t(0));
    assert!(engine.update(t(0), &hot(1.0)).is_empty());
    let mut engine = restart(&engine, &rules, t(10));
    // 1 -> 8 in 20 s is 21 per minute, from a sample taken before the restart; and it changed.
    let n = engine.update(t(20), &hot(8.0));
    let mut rules: Vec<_> = n.iter().map(|n| n.alert.rule.as_str()).collect();
    rules.sort_unstable();
    assert_eq!(rules, ["moved", "rising"]);
}

#[test]
fn state_of_rules_no_longer_loaded_is_dropped_and_counted() {
    let a = Rule::new("a", "fridge-1", "temperature", Condition::Gt(8.0));
    let b = Rule::new("b", "fridge-1", "temperature", Condition::Gt(8.0));
    let moved = Rule::new("c", "fridge-1", "temperature", Condition::Gt(8.0));
    let mut engine = engine_with(&[a.clone(), b, moved], t(0));
    assert_eq!(engine.update(t(0), &hot(12.0)).len(), 3);
    let saved = engine.state();

    let c_now = Rule::new("c", "fridge-1", "humidity", Condition::Gt(8.0));
    let mut fresh = engine_with(&[a, c_now], t(10));
    let report = fresh.restore(saved.clone(), t(10)).unwrap();
    assert_eq!(
        (
            report.series,
            report.firing,
            report.dropped_unknown_rule,
            report.dropped_mismatch
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(report.dropped(), 2);
    // The store learns what was dropped.
    let changes = fresh.take_changes();
    let mut removed: Vec<_> = changes
        .removed_series
        .iter()
        .map(|k| k.rule.as_str())
        .collect();
    removed.sort_unstable();
    assert_eq!(removed, ["b", "c"]);
    let mut caught_up = saved;
    caught_up.apply(&changes).unwrap();
    assert_eq!(caught_up, fresh.state());
}

#[test]
fn another_version_is_refused_naming_both() {
    let mut engine = engine_with(&[rule_for(0)], t(0));
    let _ = engine.update(t(0), &hot(12.0));
    let mut state = engine.state();
    state.version = ENGINE_STATE_VERSION + 1;
    let err = engine_with(&[rule_for(0)], t(1))
        .restore(state.clone(), t(1))
        .unwrap_err();
    assert_eq!(
        err,
        StateError::UnsupportedVersion {
            found: ENGINE_STATE_VERSION + 1,
            supported: ENGINE_STATE_VERSION
        }
    );
    let text = err.to_string();
    assert!(
        text.contains("version 2") && text.contains("version 1"),
        "{text}"
    );

    // From JSON, the version is checked before the rest, which need not parse.
    let json = br#"{"version": 7, "series": "a format this build does not know"}"#;
    assert_eq!(
        EngineState::from_json(json, LIMIT).unwrap_err(),
        StateError::UnsupportedVersion {
            found: 7,
            supported: ENGINE_STATE_VERSION
        }
    );
}

#[test]
fn hostile_saved_state_gives_typed_errors() {
    let too_big = vec![b' '; 1025];
    assert_eq!(
        EngineState::from_json(&too_big, 1024).unwrap_err(),
        StateError::TooLarge {
            bytes: 1025,
            limit: 1024
        }
    );
    for garbage in [
        &b""[..],
        b"\xff\xfe",
        b"[]",
        b"{\"version\": \"1\"}",
        b"{\"version\": 1}",
        b"{\"version\": 1} trailing",
        b"{\"version\": -1}",
    ] {
        let err = EngineState::from_json(garbage, LIMIT).unwrap_err();
        assert!(
            matches!(err, StateError::Malformed { .. }),
            "{garbage:?}: {err:?}"
        );
    }
    // Deep nesting is refused by the parser's depth limit, not by the stack.
    let mut deep = String::from(
        r#"{"version":1,"instance":0,"now":0,"next_alert_id":1,"next_notification_id":1,"next_silence_id":1,"silences":[],"series":[{"rule":"r","thing":"t","property":"p","last_update":0,"previous_update":0,"value":"#,
    );
    deep.push_str(&"[".repeat(100_000));
    let err = EngineState::from_json(deep.as_bytes(), LIMIT).unwrap_err();
    assert!(matches!(err, StateError::Malformed { .. }), "{err:?}");

    // A bad field is named by its path.
    let bad = br#"{"version":1,"instance":0,"now":0,"next_alert_id":1,"next_notification_id":1,"next_silence_id":1,"silences":[],"series":[{"rule":"r","thing":"t","property":"p","last_update":0,"previous_update":0,"alert":{"id":1,"state":"exploded"}}]}"#;
    let StateError::Malformed { path, .. } = EngineState::from_json(bad, LIMIT).unwrap_err() else {
        panic!()
    };
    assert_eq!(path, "series[0].alert.state");

    // A resolved alert cannot be active: refused, the engine unchanged.
    let mut engine = engine_with(&[rule_for(0)], t(0));
    let _ = engine.update(t(0), &hot(12.0));
    let mut state = engine.state();
    for s in state.series.values_mut() {
        s.alert.as_mut().unwrap().state = AlertState::Resolved;
    }
    let mut fresh = engine_with(&[rule_for(0)], t(1));
    let err = fresh.restore(state, t(1)).unwrap_err();
    assert!(
        matches!(err, StateError::Invalid { ref rule, .. } if rule == "hot"),
        "{err:?}"
    );
    assert!(fresh.active_alerts().is_empty());

    // Too many rate samples: the newest are kept.
    let mut rate: Rule = serde_json::from_value(json!({
        "id": "rising", "thing": "fridge-1", "property": "temperature",
        "condition": { "rate": { "per": "1h", "gt": 5 } }
    }))
    .unwrap();
    rate.hold_for = Duration::ZERO;
    let mut engine = engine_with(&[rate.clone()], t(0));
    let _ = engine.update(t(0), &hot(1.0));
    let mut state = engine.state();
    for s in state.series.values_mut() {
        s.samples = (0..100_000).map(|i| (t(0), f64::from(i))).collect();
    }
    let mut fresh = engine_with(&[rate], t(1));
    fresh.restore(state, t(1)).unwrap();
    let kept = fresh.state();
    let samples = &kept.series.values().next().unwrap().samples;
    assert_eq!(samples.len(), 4096);
    assert_eq!(samples.last().unwrap().1, 99_999.0);
}

#[test]
fn ids_continue_after_a_restore() {
    let rules = [rule_for(0)];
    let mut engine = engine_with(&rules, t(0));
    let first = engine.update(t(0), &hot(12.0));
    let _ = engine.update(t(1), &hot(1.0));
    let mut engine = restart(&engine, &rules, t(10));
    let second = engine.update(t(11), &hot(12.0));
    assert!(second[0].alert.id > first[0].alert.id);
    // Notification ids of the new engine are its own: none can repeat one sent before.
    assert_ne!(second[0].id.instance(), first[0].id.instance());
    assert_eq!(second[0].id.instance(), engine.instance());
}

#[test]
fn counters_at_their_limit_do_not_overflow() {
    let rules = [rule_for(0)];
    let mut engine = engine_with(&rules, t(0));
    let _ = engine.update(t(0), &hot(12.0));
    let mut state = engine.state();
    state.next_alert_id = u64::MAX;
    state.next_notification_id = u64::MAX;
    state.next_silence_id = u64::MAX;
    for s in state.series.values_mut() {
        s.alert.as_mut().unwrap().id = u64::MAX;
    }
    let mut engine = engine_with(&rules, t(1));
    engine.restore(state, t(1)).unwrap();
    let _ = engine.add_silence(Silence::new(t(0), t(1)));
    let _ = engine.add_silence(Silence::new(t(0), t(1)));
    for i in 0..4 {
        let _ = engine.update(t(2 + i), &hot(if i % 2 == 0 { 1.0 } else { 12.0 }));
    }
    assert_eq!(engine.active_alerts().len(), 1);
}

#[test]
fn a_restore_rewrites_only_what_it_changed() {
    let quiet = Rule::new(
        "quiet",
        "*",
        "temperature",
        Condition::NoData(Duration::from_secs(60)),
    );
    let rules = [rule_for(30), quiet];
    let mut engine = engine_with(&rules, t(0));
    let _ = engine.update(t(0), &hot(1.0));
    let _ = engine.update(t(0), &PropertyUpdate::new("b", "temperature", json!(1)));
    let saved = engine.state();
    let mut fresh = engine_with(&rules, t(100));
    let _ = fresh.take_changes();
    fresh.restore(saved, t(100)).unwrap();
    // Only the no-data series without an alert moved (its window starts at the restart).
    let changes = fresh.take_changes();
    let mut changed: Vec<_> = changes
        .series
        .iter()
        .map(|s| (s.rule.as_str(), s.thing.as_str(), s.last_update))
        .collect();
    changed.sort_unstable();
    assert_eq!(
        changed,
        [("quiet", "b", t(100)), ("quiet", "fridge-1", t(100))]
    );
    assert!(changes.removed_series.is_empty());
}

#[test]
fn a_saved_time_far_ahead_of_the_clock_is_not_used() {
    let rules = [rule_for(30)];
    // Before the restart the engine ran on a clock a day ahead.
    let wrong = t(86_400);
    let mut engine = engine_with(&rules, wrong);
    assert!(engine.update(wrong, &hot(12.0)).is_empty());
    let alert_id = engine.active_alerts()[0].id;

    let mut fresh = engine_with(&rules, t(100));
    let report = fresh.restore(engine.state(), t(100)).unwrap();
    assert_eq!(report.saved_time_ahead, Some(Duration::from_secs(86_300)));
    // The update times (latest and previous), pending-since and the notification time.
    assert_eq!(report.times_clamped, 4);
    assert_eq!(fresh.now(), t(100));
    let pending = fresh.active_alerts();
    assert_eq!(pending[0].id, alert_id);
    assert_eq!(
        pending[0].active_since,
        t(100),
        "the hold counts from the restart"
    );
    // The store catches up with the times as restored.
    let changes = fresh.take_changes();
    assert_eq!(changes.now, t(100));
    assert_eq!(changes.series.len(), 1);
    assert_eq!(changes.series[0].last_update, t(100));
    assert_eq!(
        changes.series[0].alert.as_ref().map(|a| a.active_since),
        Some(t(100))
    );

    assert!(fresh.tick(t(100)).is_empty());
    assert_eq!(fresh.next_deadline(), Some(t(130)));
    let fired = fresh.tick(t(130));
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].alert.fired_at, Some(t(130)));
}

#[test]
fn a_saved_time_ahead_by_at_most_the_tolerance_is_kept() {
    let rules = [rule_for(30)];
    let mut engine = engine_with(&rules, t(0));
    assert!(engine.update(t(100), &hot(12.0)).is_empty());
    // The clock stepped back a minute across the restart.
    let mut fresh = engine_with(&rules, t(40));
    let report = fresh.restore(engine.state(), t(40)).unwrap();
    assert_eq!(report.saved_time_ahead, None);
    assert_eq!(report.times_clamped, 0);
    assert_eq!(fresh.now(), t(100));
    assert_eq!(fresh.active_alerts()[0].active_since, t(100));
    assert!(fresh.tick(t(129)).is_empty());
    assert_eq!(fresh.tick(t(130)).len(), 1);

    // The bound itself: exactly the tolerance ahead is used, a nanosecond more is not.
    let edge = t(40) + MAX_SAVED_TIME_AHEAD;
    let mut fresh = engine_with(&rules, t(40));
    let report = fresh.restore(EngineState::new(1, edge), t(40)).unwrap();
    assert_eq!((report.saved_time_ahead, fresh.now()), (None, edge));
    let beyond = edge + Duration::from_nanos(1);
    let mut fresh = engine_with(&rules, t(40));
    let report = fresh.restore(EngineState::new(1, beyond), t(40)).unwrap();
    assert_eq!(
        (report.saved_time_ahead, fresh.now()),
        (Some(MAX_SAVED_TIME_AHEAD + Duration::from_nanos(1)), t(40))
    );
}

#[test]
fn saved_series_times_in_the_future_stall_no_deadline() {
    // The latest time a saved state can hold.
    let far = SystemTime::UNIX_EPOCH + Duration::from_nanos(u64::MAX);
    let mut hot_any = Rule::new("hot", "*", "temperature", Condition::Gt(8.0));
    hot_any.keep_firing_for = Duration::from_secs(60);
    hot_any.repeat_interval = Some(Duration::from_secs(600));
    let quiet = Rule::new(
        "quiet",
        "fridge-2",
        "humidity",
        Condition::NoData(Duration::from_secs(60)),
    );
    let rising: Rule = serde_json::from_value(json!({
        "id": "rising", "thing": "fridge-3", "property": "pressure",
        "condition": { "rate": { "per": "1m", "gt": 5 } }
    }))
    .unwrap();
    let rules = [hot_any, quiet, rising];
    let mut engine = engine_with(&rules, t(0));
    let fired = engine.update(t(0), &hot(12.0));
    assert_eq!(fired.len(), 1);
    let fired = engine.update(
        t(0),
        &PropertyUpdate::new("fridge-4", "temperature", json!(12.0)),
    );
    assert_eq!(fired.len(), 1);
    assert!(
        engine
            .update(
                t(1),
                &PropertyUpdate::new("fridge-2", "humidity", json!(50))
            )
            .is_empty()
    );
    assert!(
        engine
            .update(
                t(1),
                &PropertyUpdate::new("fridge-3", "pressure", json!(0.0))
            )
            .is_empty()
    );
    // fridge-1 starts clearing (keep_firing_for); fridge-4 stays hot (repeats).
    assert!(engine.update(t(5), &hot(5.0)).is_empty());

    // Every series time pushed to the far future, as a damaged or hostile file may hold.
    let mut state = engine.state();
    assert_eq!(state.series.len(), 4);
    for s in state.series.values_mut() {
        s.last_update = far;
        s.previous_update = far;
        for sample in &mut s.samples {
            sample.0 = far;
        }
        if let Some(a) = s.alert.as_mut() {
            a.active_since = far;
            a.fired_at = Some(far);
            a.last_notified = far;
            if a.resolving_since.is_some() {
                a.resolving_since = Some(far);
            }
        }
    }
    // A silence far in the future silences nothing now.
    state
        .silences
        .insert(SilenceId::from(7), Silence::new(far, far));
    let state = EngineState::from_json(&state.to_json(), LIMIT).unwrap();

    let mut fresh = engine_with(&rules, t(10));
    let report = fresh.restore(state, t(10)).unwrap();
    assert_eq!(report.saved_time_ahead, None);
    // 4 series x 2 update times, 2 alerts x 3 times, 1 clearing time, 1 sample.
    assert_eq!(report.times_clamped, 8 + 6 + 1 + 1);
    assert_eq!(fresh.now(), t(10));
    assert!(fresh.tick(t(10)).is_empty());
    assert!(fresh.next_deadline().is_some_and(|d| d <= t(70)));

    // rate: the future sample is gone, so the new ones give a rate (0 -> 100 in 10 s).
    let n = fresh.update(
        t(20),
        &PropertyUpdate::new("fridge-3", "pressure", json!(0.0)),
    );
    assert!(n.is_empty());
    let n = fresh.update(
        t(30),
        &PropertyUpdate::new("fridge-3", "pressure", json!(100.0)),
    );
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].alert.rule, "rising");

    // keep_firing_for counts from the restart; no data from the restart too.
    let mut n: Vec<_> = fresh
        .tick(t(70))
        .into_iter()
        .map(|n| (n.alert.rule.clone(), n.alert.thing.clone(), n.kind))
        .collect();
    n.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    assert_eq!(
        n,
        [
            ("hot".into(), "fridge-1".into(), NotificationKind::Resolved),
            ("quiet".into(), "fridge-2".into(), NotificationKind::Fired),
        ]
    );

    // The repeat counts from the restart, not from the far future (the rate alert, its
    // samples out of the window, resolves on the way).
    let n: Vec<_> = fresh
        .tick(t(610))
        .into_iter()
        .filter(|n| n.alert.rule == "hot")
        .collect();
    assert_eq!(n.len(), 1);
    assert_eq!(
        (n[0].alert.thing.as_str(), n[0].kind, n[0].repeat),
        ("fridge-4", NotificationKind::Fired, 1)
    );
}
