//! `Engine::take_changes` against `Engine::state`: applying every batch of changes, in order,
//! to a state saved earlier gives the engine's state, whatever the engine went through (random
//! updates, ticks, acknowledgements, silences, rule changes and restores).

use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use serde_json::json;
use wot_alerts::{
    Condition, Engine, EngineState, Escalation, PropertyUpdate, Rule, Severity, Silence, SilenceId,
    StateChanges,
};

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

const THINGS: [&str; 3] = ["a", "b", "c"];

/// Rules that use every kind of deadline and state: hold, hysteresis, keep-firing, repeats,
/// escalation, `*` things, no-data, rate and changed.
fn rules() -> Vec<Rule> {
    let mut hot = Rule::new("hot", "a", "t", Condition::Gt(5.0));
    hot.hold_for = Duration::from_secs(3);
    hot.clear = Some(Condition::Lt(3.0));
    hot.keep_firing_for = Duration::from_secs(2);
    hot.repeat_interval = Some(Duration::from_secs(4));
    hot.escalate = vec![Escalation {
        condition: Condition::Gt(8.0),
        severity: Severity::Critical,
    }];
    let mut any = Rule::new("any", "*", "t", Condition::Gt(7.0));
    any.repeat_interval = Some(Duration::from_secs(5));
    let quiet = Rule::new("quiet", "b", "t", Condition::NoData(Duration::from_secs(6)));
    let mut rising: Rule = serde_json::from_value(json!({
        "id": "rising", "thing": "*", "property": "t",
        "condition": { "rate": { "per": "5s", "gt": 3 } }
    }))
    .unwrap();
    rising.hold_for = Duration::from_secs(1);
    let moved = Rule::new("moved", "c", "u", Condition::Changed(true));
    vec![hot, any, quiet, rising, moved]
}

#[derive(Debug, Clone)]
enum Op {
    Update {
        thing: usize,
        other: bool,
        value: u8,
    },
    Tick(u8),
    Ack(usize, usize),
    Silence(u8),
    Unsilence(u8),
    RemoveRule(usize),
    AddRule(usize),
    Take,
    Restart(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3usize, any::<bool>(), 0..10u8)
            .prop_map(|(thing, other, value)| Op::Update { thing, other, value }),
        3 => (0..12u8).prop_map(Op::Tick),
        1 => (0..5usize, 0..3usize).prop_map(|(r, t)| Op::Ack(r, t)),
        1 => (0..20u8).prop_map(Op::Silence),
        1 => (0..6u8).prop_map(Op::Unsilence),
        1 => (0..5usize).prop_map(Op::RemoveRule),
        1 => (0..5usize).prop_map(Op::AddRule),
        2 => Just(Op::Take),
        1 => (0..30u8).prop_map(Op::Restart),
    ]
}

/// Takes the changes, checks they serialize, and applies them to `saved`.
fn take(engine: &mut Engine, saved: &mut EngineState) {
    let changes = engine.take_changes();
    let json = changes.to_json();
    assert_eq!(StateChanges::from_json(&json, u64::MAX).unwrap(), changes);
    saved.apply(&changes).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn changes_applied_in_order_give_the_state(ops in proptest::collection::vec(op(), 1..80)) {
        let all = rules();
        let mut now = t0();
        let mut engine = Engine::new();
        for r in &all {
            engine.add_rule(r.clone(), now).unwrap();
        }
        let mut saved = EngineState::new(engine.instance(), now);
        // Several batches folded into one apply the same (a store's group commit).
        let mut merged: Option<(EngineState, StateChanges)> = None;
        take(&mut engine, &mut saved);
        prop_assert_eq!(&saved, &engine.state());
        for op in ops {
            match op {
                Op::Update { thing, other, value } => {
                    now += Duration::from_millis(700);
                    let property = if other { "u" } else { "t" };
                    let value = if value == 9 { json!("x") } else { json!(value) };
                    let _ = engine.update(now, &PropertyUpdate::new(THINGS[thing], property, value));
                }
                Op::Tick(s) => {
                    now += Duration::from_secs(u64::from(s));
                    let _ = engine.tick(now);
                }
                Op::Ack(r, t) => {
                    let _ = engine.acknowledge(now, &all[r].id, THINGS[t], "ops", None);
                }
                Op::Silence(s) => {
                    let silence = Silence::new(now, now + Duration::from_secs(u64::from(s)));
                    let _ = engine.add_silence(silence.thing(THINGS[usize::from(s) % 3]));
                }
                Op::Unsilence(id) => {
                    let _ = engine.remove_silence(SilenceId::from(u64::from(id)));
                }
                Op::RemoveRule(r) => {
                    let _ = engine.remove_rule(&all[r].id, now);
                }
                Op::AddRule(r) => {
                    let _ = engine.add_rule(all[r].clone(), now);
                }
                Op::Take => {
                    let changes = engine.take_changes();
                    let before = saved.clone();
                    saved.apply(&changes).unwrap();
                    prop_assert_eq!(&saved, &engine.state());
                    merged = Some(match merged.take() {
                        None => (before, changes),
                        Some((base, mut folded)) => {
                            folded.merge(changes);
                            (base, folded)
                        }
                    });
                    if let Some((base, folded)) = &merged {
                        let mut once = base.clone();
                        once.apply(folded).unwrap();
                        prop_assert_eq!(&once, &saved);
                    }
                }
                Op::Restart(s) => {
                    take(&mut engine, &mut saved);
                    now += Duration::from_secs(u64::from(s));
                    let rules: Vec<Rule> = engine.rules().map(|r| Rule::clone(r)).collect();
                    engine = Engine::new();
                    for r in rules {
                        engine.add_rule(r, now).unwrap();
                    }
                    engine.restore(saved.clone(), now).unwrap();
                    merged = None;
                }
            }
        }
        take(&mut engine, &mut saved);
        prop_assert_eq!(&saved, &engine.state());
    }
}
