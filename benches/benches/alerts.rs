//! Group 5: the `wot-alerts` engine (pure, clock injected).
//!
//! * `alerts_update/{10,1000,100000}-rules`: one update whose property exactly one rule watches,
//!   with 10, 1,000 or 100,000 rules loaded; values cycle so the rule fires and resolves.
//! * `alerts_tick/10000-pending`: a timer tick with 10,000 pending alerts (one `*` rule with
//!   `for: 1h`, 10,000 things), when none is due and when all 10,000 fire.
//! * `alerts_state/100000-firing`: the engine's side of a restart with 100,000 firing alerts
//!   (one `*` rule, 100,000 things): `snapshot` (`Engine::state`), `to-json`, `from-json`,
//!   `restore` (into an engine with the rule), and 1,000 updates of different series followed
//!   by `Engine::take_changes`.
//!
//! `cargo bench -p benches --bench alerts`. With `ALERTS_PROFILE=<rules>` (10, 1000 or 100000),
//! nothing is timed: the engine with that many rules takes 100,000 updates of the
//! `alerts_update` row, a run for a profiler such as `valgrind --tool=callgrind`, whose
//! instruction counts do not depend on the machine's load.

use serde_json::json;
use std::time::{Duration, SystemTime};

use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use wot_alerts::{Condition, Engine, EngineState, PropertyUpdate, Rule};

const PENDING: usize = 10_000;
const FIRING: usize = 100_000;

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn engine_with_rules(n: usize) -> Engine {
    let mut engine = Engine::new();
    for i in 0..n {
        // Rule 0 watches `temperature`; the others watch properties no update touches.
        let property = if i == 0 {
            "temperature".to_owned()
        } else {
            format!("p{i}")
        };
        let rule = Rule::new(
            format!("rule-{i}"),
            "fridge-1",
            property,
            Condition::Gt(8.0),
        );
        engine.add_rule(rule, t0()).expect("valid rule");
    }
    engine
}

fn engine_with_pending() -> Engine {
    let mut engine = Engine::new();
    let mut rule = Rule::new("hot", "*", "temperature", Condition::Gt(8.0));
    rule.hold_for = Duration::from_secs(3600);
    engine.add_rule(rule, t0()).expect("valid rule");
    for k in 0..PENDING {
        let update = PropertyUpdate::new(format!("thing-{k}"), "temperature", json!(9));
        assert!(
            engine.update(t0(), &update).is_empty(),
            "pending, not firing"
        );
    }
    engine
}

/// The values the watched property cycles through: the rule fires at 9 and resolves at 6.
fn cycling_updates() -> Vec<PropertyUpdate> {
    [5.0, 7.5, 9.0, 12.0, 6.0]
        .into_iter()
        .map(|v| PropertyUpdate::new("fridge-1", "temperature", json!(v)))
        .collect()
}

/// One update and the drop of its notifications, as a row iteration does them: a function of
/// its own, so that a profiler can count it alone (`--toggle-collect=alerts::profiled_step`).
#[inline(never)]
fn profiled_step(engine: &mut Engine, now: SystemTime, update: &PropertyUpdate) -> usize {
    std::hint::black_box(engine.update(now, update)).len()
}

/// Runs 100,000 updates of the `alerts_update` row with `rules` rules, untimed, for a profiler.
fn profile(rules: usize) {
    let updates = cycling_updates();
    let mut engine = engine_with_rules(rules);
    let mut notifications = 0;
    for step in 1..=100_000u64 {
        let now = t0() + Duration::from_millis(step);
        let update = &updates[step as usize % updates.len()];
        notifications += profiled_step(&mut engine, now, update);
    }
    assert_eq!(
        notifications, 40_000,
        "fired and resolved once every 5 updates"
    );
}

fn alerts_update(c: &mut Criterion) {
    let mut group = c.benchmark_group("alerts_update");
    group
        .throughput(Throughput::Elements(1))
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let updates = cycling_updates();
    for n in [10, 1_000, 100_000] {
        let mut engine = engine_with_rules(n);
        let mut step = 0u64;
        let mut notifications = 0usize;
        group.bench_function(format!("{n}-rules"), |b| {
            b.iter(|| {
                step += 1;
                let now = t0() + Duration::from_millis(step);
                let update = &updates[step as usize % updates.len()];
                let out = engine.update(now, update);
                notifications += out.len();
                out
            });
        });
        // `step` stays 0 when a filter on the command line skipped this benchmark.
        assert!(
            step == 0 || notifications > 0,
            "the matching rule fired and resolved"
        );
    }
    group.finish();
}

fn alerts_tick(c: &mut Criterion) {
    let mut group = c.benchmark_group("alerts_tick/10000-pending");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let mut engine = engine_with_pending();
    let mut step = 0u64;
    group.throughput(Throughput::Elements(1));
    group.bench_function("none-due", |b| {
        b.iter(|| {
            step += 1;
            engine.tick(t0() + Duration::from_millis(step))
        });
    });
    group.throughput(Throughput::Elements(PENDING as u64));
    group.sample_size(10);
    group.bench_function("all-due-fire", |b| {
        b.iter_batched(
            engine_with_pending,
            |mut engine| {
                let fired = engine.tick(t0() + Duration::from_secs(7200));
                assert_eq!(fired.len(), PENDING);
                (fired, engine)
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

fn firing_rule() -> Rule {
    Rule::new("hot", "*", "temperature", Condition::Gt(8.0))
}

fn engine_with_firing() -> Engine {
    let mut engine = Engine::new();
    engine.add_rule(firing_rule(), t0()).expect("valid rule");
    for k in 0..FIRING {
        let update = PropertyUpdate::new(format!("thing-{k}"), "temperature", json!(9));
        assert_eq!(engine.update(t0(), &update).len(), 1, "fires");
    }
    engine
}

fn alerts_state(c: &mut Criterion) {
    let mut group = c.benchmark_group("alerts_state/100000-firing");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
        .throughput(Throughput::Elements(FIRING as u64));
    let mut engine = engine_with_firing();
    let state = engine.state();
    let json = state.to_json();
    group.bench_function("snapshot", |b| b.iter(|| engine.state()));
    group.bench_function("to-json", |b| b.iter(|| state.to_json()));
    group.bench_function("from-json", |b| {
        b.iter(|| EngineState::from_json(&json, u64::MAX).expect("valid"))
    });
    let restart = t0() + Duration::from_secs(600);
    group.bench_function("restore", |b| {
        b.iter_batched(
            || {
                let mut fresh = Engine::new();
                fresh.add_rule(firing_rule(), restart).expect("valid rule");
                (fresh, state.clone())
            },
            |(mut fresh, state)| {
                let report = fresh.restore(state, restart).expect("restored");
                assert_eq!(report.firing, FIRING);
                fresh
            },
            BatchSize::PerIteration,
        );
    });
    let _ = engine.take_changes();
    let mut step = 0u64;
    let updates: Vec<PropertyUpdate> = (0..1_000)
        .map(|k| PropertyUpdate::new(format!("thing-{k}"), "temperature", json!(10)))
        .collect();
    group.throughput(Throughput::Elements(1_000));
    // 1,000 updates (each about as costly as an `alerts_update` step) and the take.
    group.bench_function("update-1000-and-take-changes", |b| {
        b.iter(|| {
            step += 1;
            let now = t0() + Duration::from_millis(step);
            for update in &updates {
                let _ = engine.update(now, update);
            }
            let changes = engine.take_changes();
            assert_eq!(changes.series.len(), 1_000);
            changes
        });
    });
    group.finish();
}

criterion_group!(benches, alerts_update, alerts_tick, alerts_state);

fn main() {
    if let Ok(rules) = std::env::var("ALERTS_PROFILE") {
        profile(rules.parse().expect("ALERTS_PROFILE: a number of rules"));
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
