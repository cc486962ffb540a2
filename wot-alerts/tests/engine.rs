//! The pure engine stepped through time: scale, deadlines, and edge cases of its bookkeeping.

use std::time::{Duration, SystemTime};

use serde_json::json;
use wot_alerts::{AlertState, Condition, Engine, NotificationKind, PropertyUpdate, Rule};

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn an_update_only_touches_the_rules_of_its_property() {
    let mut engine = Engine::new();
    for i in 0..100_000 {
        let rule = Rule::new(format!("r{i}"), "*", format!("p{i}"), Condition::Gt(1.0));
        engine.add_rule(rule, t(0)).unwrap();
    }
    let n = engine.update(t(1), &PropertyUpdate::new("dev", "p4242", json!(5)));
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].alert.rule, "r4242");
    assert!(
        engine
            .update(t(2), &PropertyUpdate::new("dev", "unwatched", json!(5)))
            .is_empty()
    );
    assert_eq!(engine.active_alerts().len(), 1);
}

#[test]
fn ten_thousand_pending_alerts_fire_on_their_own_deadlines() {
    let mut engine = Engine::new();
    let mut rule = Rule::new("hot", "*", "temperature", Condition::Gt(8.0));
    rule.hold_for = Duration::from_secs(60);
    engine.add_rule(rule, t(0)).unwrap();
    for i in 0..10_000u64 {
        // Thing i turns hot at second i / 200.
        let n = engine.update(
            t(i / 200),
            &PropertyUpdate::new(format!("f{i}"), "temperature", json!(9)),
        );
        assert!(n.is_empty());
    }
    assert_eq!(engine.next_deadline(), Some(t(60)));
    assert!(engine.tick(t(59)).is_empty());
    let fired = engine.tick(t(60));
    assert_eq!(fired.len(), 200);
    assert!(
        fired
            .iter()
            .all(|n| n.at == t(60) && n.kind == NotificationKind::Fired)
    );
    let fired = engine.tick(t(1000));
    assert_eq!(fired.len(), 9_800);
    assert!(
        fired.windows(2).all(|w| w[0].at <= w[1].at),
        "in time order"
    );
    assert_eq!(fired.last().unwrap().at, t(109));
    assert_eq!(engine.next_deadline(), None);
}

#[test]
fn a_moving_no_data_deadline_fires_once_from_the_last_update() {
    let mut engine = Engine::new();
    engine
        .add_rule(
            Rule::new(
                "quiet",
                "s1",
                "temperature",
                Condition::NoData(Duration::from_secs(60)),
            ),
            t(0),
        )
        .unwrap();
    for i in 0..5_000 {
        assert!(
            engine
                .update(
                    t(i * 10),
                    &PropertyUpdate::new("s1", "temperature", json!(i))
                )
                .is_empty()
        );
    }
    let last = 4_999 * 10;
    assert!(engine.tick(t(last + 59)).is_empty());
    let n = engine.tick(t(last + 3600));
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].at, t(last + 60));
}

#[test]
fn time_never_goes_backwards() {
    let mut engine = Engine::new();
    let mut rule = Rule::new("hot", "f", "temperature", Condition::Gt(8.0));
    rule.hold_for = Duration::from_secs(10);
    engine.add_rule(rule, t(100)).unwrap();
    let _ = engine.update(t(100), &PropertyUpdate::new("f", "temperature", json!(9)));
    // An update stamped earlier is taken at the latest time seen.
    let _ = engine.update(t(50), &PropertyUpdate::new("f", "temperature", json!(9)));
    assert_eq!(engine.now(), t(100));
    assert_eq!(engine.active_alerts()[0].active_since, t(100));
    assert_eq!(engine.tick(t(110))[0].at, t(110));
}

#[test]
fn a_removed_rule_leaves_no_timers_for_its_successor() {
    let mut engine = Engine::new();
    let mut rule = Rule::new("hot", "f", "temperature", Condition::Gt(8.0));
    rule.hold_for = Duration::from_secs(10);
    engine.add_rule(rule.clone(), t(0)).unwrap();
    let _ = engine.update(t(0), &PropertyUpdate::new("f", "temperature", json!(9)));
    let (removed, resolved) = engine.remove_rule("hot", t(5)).unwrap();
    assert_eq!(removed.id, "hot");
    assert!(resolved.is_empty(), "a pending alert ends silently");
    engine.add_rule(rule, t(5)).unwrap();
    assert!(
        engine.tick(t(10)).is_empty(),
        "the old rule's deadline is stale"
    );
    assert!(engine.active_alerts().is_empty());
}

#[test]
fn history_is_bounded() {
    let mut engine = Engine::new().with_history_limit(3);
    engine
        .add_rule(
            Rule::new("hot", "*", "temperature", Condition::Gt(8.0)),
            t(0),
        )
        .unwrap();
    for i in 0..10 {
        let _ = engine.update(t(2 * i), &PropertyUpdate::new("f", "temperature", json!(9)));
        let _ = engine.update(
            t(2 * i + 1),
            &PropertyUpdate::new("f", "temperature", json!(1)),
        );
    }
    let history = engine.history();
    assert_eq!(history.len(), 3);
    assert!(history.iter().all(|a| a.state == AlertState::Resolved));
    assert_eq!(history.back().unwrap().resolved_at, Some(t(19)));
    assert!(history.front().unwrap().id < history.back().unwrap().id);
}

#[test]
fn values_that_do_not_fit_the_condition_do_not_hold() {
    let mut engine = Engine::new();
    engine
        .add_rule(
            Rule::new("hot", "*", "temperature", Condition::Gt(8.0)),
            t(0),
        )
        .unwrap();
    let mut pointed = Rule::new("deep", "*", "status", Condition::Ge(1.0));
    pointed.pointer = Some("/a/b".into());
    engine.add_rule(pointed, t(0)).unwrap();
    for value in [
        json!("hot"),
        json!(null),
        json!([9]),
        json!({"v": 9}),
        json!(true),
    ] {
        assert!(
            engine
                .update(t(1), &PropertyUpdate::new("f", "temperature", value))
                .is_empty()
        );
    }
    assert!(
        engine
            .update(t(1), &PropertyUpdate::new("f", "status", json!({"a": 1})))
            .is_empty()
    );
    let n = engine.update(
        t(2),
        &PropertyUpdate::new("f", "status", json!({"a": {"b": 2}})),
    );
    assert_eq!(n[0].value(), Some(&json!(2)));
}

#[test]
fn a_wildcard_rule_tracks_at_most_the_series_limit() {
    let mut engine = Engine::new().with_series_limit(1000);
    let rule = Rule::new("hot", "*", "temperature", Condition::Gt(8.0));
    engine.add_rule(rule, t(0)).unwrap();
    for i in 0..5000 {
        let thing = format!("thing-{i}");
        let _ = engine.update(t(1), &PropertyUpdate::new(thing, "temperature", json!(9)));
    }
    assert_eq!(engine.series_count(), 1000);
    assert_eq!(engine.series_dropped(), 4000);
    assert_eq!(engine.active_alerts().len(), 1000);
    // Known things go on being evaluated.
    let n = engine.update(
        t(2),
        &PropertyUpdate::new("thing-7", "temperature", json!(1)),
    );
    assert_eq!(n[0].kind, NotificationKind::Resolved);
}

#[test]
fn the_history_is_bounded_by_bytes_as_well_as_count() {
    let mut engine = Engine::new()
        .with_history_limit(1000)
        .with_history_bytes(1 << 20);
    let rule = Rule::new("big", "*", "temperature", Condition::Gt(8.0));
    engine.add_rule(rule, t(0)).unwrap();
    // Things with 100 KiB ids: each resolved alert holds the id several times.
    let long = "x".repeat(100 << 10);
    for i in 0..100 {
        let thing = format!("{i}-{long}");
        let _ = engine.update(
            t(1),
            &PropertyUpdate::new(thing.as_str(), "temperature", json!(9)),
        );
        let _ = engine.update(
            t(2),
            &PropertyUpdate::new(thing.as_str(), "temperature", json!(1)),
        );
    }
    let history = engine.history();
    assert!(history.len() < 10, "{} alerts kept", history.len());
    assert!(!history.is_empty());
    assert!(history.back().unwrap().thing.starts_with("99-"));
    // An alert larger than the whole budget is not kept.
    let mut tiny = Engine::new().with_history_bytes(1024);
    tiny.add_rule(
        Rule::new("big", "*", "temperature", Condition::Gt(8.0)),
        t(0),
    )
    .unwrap();
    let _ = tiny.update(
        t(1),
        &PropertyUpdate::new(long.as_str(), "temperature", json!(9)),
    );
    let _ = tiny.update(
        t(2),
        &PropertyUpdate::new(long.as_str(), "temperature", json!(1)),
    );
    assert!(tiny.history().is_empty());
}

#[test]
fn a_tick_across_years_of_repeats_notifies_twice_not_once_per_interval() {
    let mut rule = Rule::new("hot", "fridge-1", "temperature", Condition::Gt(8.0));
    rule.repeat_interval = Some(Duration::from_secs(1));
    let mut engine = Engine::new();
    engine.add_rule(rule, t(0)).unwrap();
    let fired = engine.update(
        t(0),
        &PropertyUpdate::new("fridge-1", "temperature", json!(9)),
    );
    assert_eq!(fired.len(), 1);
    let year = 365 * 86_400;
    let n = engine.tick(t(90 * year));
    assert_eq!(n.len(), 2, "{n:?}");
    assert_eq!(n[0].repeat, 1);
    assert_eq!(n[1].repeat, (90 * year) as u32);
    assert_eq!(n[1].at, t(90 * year));
    assert_eq!(engine.next_deadline(), Some(t(90 * year + 1)));
}

/// Prometheus semantics: the evaluation at `t` sees the sample at `t`. A pending alert whose
/// hold time ends at the very instant its condition stops holding never fires.
#[test]
fn a_sample_at_the_end_of_a_hold_time_comes_before_the_deadline() {
    let mut engine = Engine::new();
    let mut rule = Rule::new("hot", "fridge-1", "temperature", Condition::Gt(8.0));
    rule.hold_for = Duration::from_secs(20);
    engine.add_rule(rule, t(0)).unwrap();
    let sample = |v: i64| PropertyUpdate::new("fridge-1", "temperature", json!(v));
    assert!(engine.update(t(0), &sample(9)).is_empty());
    assert!(engine.update(t(10), &sample(9)).is_empty());
    assert_eq!(engine.next_deadline(), Some(t(20)));
    let n = engine.update(t(20), &sample(5));
    assert!(n.is_empty(), "no fired/resolved pair: {n:?}");
    assert!(engine.active_alerts().is_empty());
    assert!(engine.tick(t(30)).is_empty());
    assert!(engine.history().is_empty());

    // Still holding at the deadline: it fires at that instant, from the update.
    assert!(engine.update(t(40), &sample(9)).is_empty());
    let n = engine.update(t(60), &sample(10));
    assert_eq!(n.len(), 1);
    assert_eq!((n[0].kind, n[0].at), (NotificationKind::Fired, t(60)));
    assert!(
        engine.tick(t(60)).is_empty(),
        "the deadline does not fire twice"
    );

    // A deadline of another series at the same instant still runs, after the sample.
    let mut other = Rule::new("cold", "freezer-1", "temperature", Condition::Gt(-10.0));
    other.hold_for = Duration::from_secs(20);
    engine.add_rule(other, t(60)).unwrap();
    let freezer = |v: i64| PropertyUpdate::new("freezer-1", "temperature", json!(v));
    assert!(engine.update(t(70), &freezer(-5)).is_empty());
    let n = engine.update(t(90), &sample(5));
    let kinds: Vec<_> = n.iter().map(|n| (n.alert.rule.as_str(), n.kind)).collect();
    assert_eq!(
        kinds,
        [
            ("hot", NotificationKind::Resolved),
            ("cold", NotificationKind::Fired)
        ]
    );
}

#[test]
fn a_no_data_summary_says_how_long_there_has_been_no_data() {
    let mut engine = Engine::new();
    let rule = Rule::new(
        "co2-silent",
        "room-1",
        "co2",
        Condition::NoData(Duration::from_secs(300)),
    );
    engine.add_rule(rule, t(0)).unwrap();
    let fired = engine.tick(t(300));
    assert_eq!(fired[0].kind, NotificationKind::Fired);
    assert_eq!(
        fired[0].summary(),
        "co2-silent: no data from room-1 co2 for 5m"
    );
    let n = engine.update(t(450), &PropertyUpdate::new("room-1", "co2", json!(400)));
    assert_eq!(n[0].kind, NotificationKind::Resolved);
    assert_eq!(
        n[0].summary(),
        "co2-silent: no data from room-1 co2 for 7m 30s"
    );
}
