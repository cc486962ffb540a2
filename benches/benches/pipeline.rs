//! Group 11: the whole pipeline on one core, against parsing the same bytes alone.
//!
//! The body of case (a) (100,000 `event: temperature` notifications with a 70-byte JSON object
//! and an `id`, in 64 KiB chunks) goes through the sans-I/O parts a property observer and an
//! alert manager run, one after the other, on one thread:
//!
//! 1. `wot_sse::parser::Parser` turns the bytes into events;
//! 2. `wot_events::PropertyDecoder` turns each event into a `PropertyUpdate` (JSON parse, and the
//!    check against the property's object schema, compiled once);
//! 3. a `wot_alerts::Engine` with 1,000 rules evaluates it (one rule watches this property of
//!    this Thing: `/value > 24.5`, which fires and resolves once every 700 updates);
//! 4. the update goes into an `EventLog` (default capacity, full after the first 1,000).
//!
//! Rows: `parse` (step 1 alone: the floor), `decode` (1–2), `alerts` (1–3) and `pipeline`
//! (1–4). The clock is passed in, 1 ms per update. The update's Thing id, property name and
//! value move from stage to stage (into the engine's `PropertyUpdate`, then into the log's
//! `EventRecord`), as a process that runs these steps in turn would hand them on.
//!
//! `cargo bench -p benches --bench pipeline` (criterion). With `PIPELINE_INTERLEAVED=1`, the
//! `parse` and `pipeline` rows run instead in turn, round after round (`SSE_ROUNDS`, default
//! 21), and the median of the per-round ratios is printed (see `benches::interleave`).
//! With `PIPELINE_PROFILE=<row>` (`parse`, `decode`, `alerts` or `pipeline`), that row runs
//! `PIPELINE_RUNS` times (default 3) and nothing is timed: a run for a profiler such as
//! `valgrind --tool=callgrind`, whose instruction counts do not depend on the machine's load,
//! or `perf stat -e task-clock` (CPU time, less sensitive to other processes than wall time);
//! `PIPELINE_PROFILE=setup` builds the workload and the pipeline only, to subtract.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use benches::{Workload, drivers, interleave, workload};
use criterion::{Criterion, SamplingMode, Throughput};
use wot_alerts::Engine;
use wot_events::{EventLog, EventRecord, PropertyDecoder, SharedStr};
use wot_sse::parser::{Item, Parser};

#[path = "common/fridge.rs"]
mod fridge;

use fridge::{engine, fridge};

/// How far the pipeline goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Decode,
    Alerts,
    Log,
}

/// The state that lives across runs, as it would in a process that observes a Thing.
struct Pipeline {
    decoder: PropertyDecoder,
    title: SharedStr,
    engine: Engine,
    log: EventLog,
    clock: SystemTime,
    notifications: usize,
}

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

impl Pipeline {
    fn new() -> Self {
        let fridge = fridge();
        let t0 = t0();
        Pipeline {
            decoder: PropertyDecoder::all_properties(&fridge),
            title: SharedStr::from(fridge.title()),
            engine: engine(t0),
            log: EventLog::new(),
            clock: t0,
            notifications: 0,
        }
    }

    /// Runs `workload` through the pipeline up to `stage`; returns the updates delivered.
    fn run(&mut self, workload: &Workload, stage: Stage) -> u64 {
        let mut parser = Parser::new();
        let mut updates = 0;
        for chunk in workload.chunks() {
            parser.feed(chunk);
            updates += self.drain(&mut parser, stage);
        }
        parser.end_of_body();
        updates + self.drain(&mut parser, stage)
    }

    fn drain(&mut self, parser: &mut Parser, stage: Stage) -> u64 {
        let mut updates = 0;
        while let Some(item) = parser.next_item() {
            let Ok(Item::Event(event)) = item else {
                continue;
            };
            self.clock += Duration::from_millis(1);
            let now = self.clock;
            let Some(Ok(update)) = self.decoder.decode(&event, now) else {
                continue;
            };
            assert!(update.schema_violation.is_none(), "{update:?}");
            updates += 1;
            if stage == Stage::Decode {
                black_box(update);
                continue;
            }
            // The update's parts move on from stage to stage; none is copied.
            let for_alerts =
                wot_alerts::PropertyUpdate::new(update.thing_id, update.property, update.value);
            self.notifications += self.engine.update(now, &for_alerts).len();
            if stage == Stage::Alerts {
                black_box(for_alerts);
                continue;
            }
            self.log.push(EventRecord {
                thing_id: for_alerts.thing.into(),
                thing_title: self.title.clone(),
                event: for_alerts.property.into(),
                data: for_alerts.value,
                event_id: update.event_id,
                received_at: now,
            });
        }
        updates
    }
}

fn criterion_rows(case: &Workload) {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = c.benchmark_group(format!("pipeline/{}", case.name));
    group
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(case.events));
    group.bench_function("parse", |b| {
        b.iter(|| assert_eq!(drivers::parse_wot_sse(case), case.events));
    });
    for (name, stage) in [
        ("decode", Stage::Decode),
        ("alerts", Stage::Alerts),
        ("pipeline", Stage::Log),
    ] {
        let mut pipeline = Pipeline::new();
        group.bench_function(name, |b| {
            b.iter(|| assert_eq!(pipeline.run(case, stage), case.events));
        });
        // Nothing ran when a filter on the command line skipped this row.
        if stage >= Stage::Alerts && pipeline.clock > t0() {
            assert!(pipeline.notifications > 0, "the matching rule fired");
        }
        if stage == Stage::Log && !pipeline.log.is_empty() {
            assert_eq!(pipeline.log.len(), 1000, "the log is full");
        }
    }
    group.finish();
    c.final_summary();
}

fn interleaved(case: &Workload) {
    let mut pipeline = Pipeline::new();
    let mut parse = interleave::timed(case.events, || drivers::parse_wot_sse(case));
    let mut full = interleave::timed(case.events, || pipeline.run(case, Stage::Log));
    let mut contenders: [(&str, &mut dyn FnMut() -> Duration); 2] =
        [("parse", &mut parse), ("pipeline", &mut full)];
    interleave::run_and_report(
        &format!("pipeline_interleaved/{}", case.name),
        21,
        &mut contenders,
        &[("pipeline", "parse")],
    );
}

/// Runs one row `PIPELINE_RUNS` times (default 3), untimed, for a profiler.
fn profile(case: &Workload, row: &str) {
    let stage = match row {
        "setup" => None,
        "parse" => Some(None),
        "decode" => Some(Some(Stage::Decode)),
        "alerts" => Some(Some(Stage::Alerts)),
        "pipeline" => Some(Some(Stage::Log)),
        other => {
            panic!("PIPELINE_PROFILE={other}: expected setup, parse, decode, alerts or pipeline")
        }
    };
    let mut pipeline = Pipeline::new();
    let Some(stage) = stage else { return };
    let runs = std::env::var("PIPELINE_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    for _ in 0..runs {
        let events = match stage {
            None => drivers::parse_wot_sse(case),
            Some(stage) => pipeline.run(case, stage),
        };
        assert_eq!(events, case.events);
    }
}

fn main() {
    let case = workload::case_a();
    if let Ok(row) = std::env::var("PIPELINE_PROFILE") {
        profile(&case, &row);
    } else if std::env::var_os("PIPELINE_INTERLEAVED").is_some() {
        interleaved(&case);
    } else {
        criterion_rows(&case);
    }
}
