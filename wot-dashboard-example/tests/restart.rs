//! kill -9 and restart: the real binary, headless with `--state DIR` and `--output FILE` (and
//! `--web` beside it for acknowledging and silencing), against a Thing served here whose
//! property values and events carry increasing SSE ids, and a webhook receiver. The dashboard
//! is killed with SIGKILL at random points [`KILLS`] times and started again each time over
//! the same state directory and output file. Checked at the end:
//!
//! - every property update and event the Thing published is in the output file exactly once
//!   (by Thing, name and id): the file is the union of every run's output, cut back and caught
//!   up by each restart, and no allowance is made for a kill between a commit and the write of
//!   its lines; every complete line in it is JSON (only the very end may hold a line cut by
//!   the last kill);
//! - each alert episode was notified to the webhook exactly once (distinct idempotency ids; a
//!   repeat of the same id, possible when the kill falls between sending and marking it done,
//!   is what the id is for, and is counted but allowed);
//! - the acknowledgement and the silence made through the web API in the first run are still
//!   there after every restart, and the last run's page shows the restored history.
//!
//! The Thing answers each SSE connection, at random, either as a server that honours
//! `Last-Event-ID` (it sends only what follows it) or as one that replays its last
//! [`REPLAY_ALL_KEEP`] records whatever the client says, so both resume and de-duplication by
//! id are exercised. The random choices (kill times, server modes) come from one seeded RNG:
//! the seed is printed, and `RESTART_SEED=N` runs the same choices again.
//!
//! Each run serves its page on a loopback address of its own (`127.0.0.N`), so that its `web`
//! line is told apart from those of earlier runs still in the file.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use tokio::sync::watch;

const BIN: &str = env!("CARGO_BIN_EXE_wot-dashboard-example");
const THING: &str = "urn:test:restart:tank";
/// SIGKILLs over the run (the last run, which is checked, is not killed).
const KILLS: usize = 22;
/// The Thing's step: each publishes a `level` value, every third an `overflow` event and
/// every tenth a `pressure` value.
const STEP: Duration = Duration::from_millis(40);
/// The `level` values, over and over: above 7 fires `level-high`, at or below 3 clears it.
/// Several values on each side, so that an episode never hangs on a single update.
const LEVELS: [i64; 12] = [0, 2, 4, 6, 8, 9, 10, 9, 8, 6, 4, 2];
/// Records the replay-everything mode sends on each connection (at most the dashboard's
/// de-duplication window, 256 ids per stream by default).
const REPLAY_ALL_KEEP: usize = 200;
/// Shortest and longest time a run lives before its kill.
const LIFE_MS: (u64, u64) = (30, 1400);

/// One record of a stream.
#[derive(Debug, Clone)]
struct Record {
    id: u64,
    name: &'static str,
    data: Value,
}

#[derive(Debug, Default)]
struct Logs {
    properties: Vec<Record>,
    events: Vec<Record>,
    steps: u64,
}

#[derive(Debug, Clone, Copy)]
enum Which {
    Properties,
    Events,
}

impl Logs {
    fn log(&self, which: Which) -> &[Record] {
        match which {
            Which::Properties => &self.properties,
            Which::Events => &self.events,
        }
    }

    /// The last step, after the last kill: a `level` value and an event only the last run
    /// can take, so that it has caught up once it printed them.
    fn last_step(&mut self) {
        while !self.steps.is_multiple_of(3) {
            self.step();
        }
        self.step();
    }

    fn step(&mut self) {
        let step = self.steps;
        self.steps += 1;
        let level = LEVELS[usize::try_from(step).unwrap_or(0) % LEVELS.len()];
        let id = self.properties.len() as u64 + 1;
        self.properties.push(Record {
            id,
            name: "level",
            data: json!(level),
        });
        if step.is_multiple_of(10) {
            let id = self.properties.len() as u64 + 1;
            self.properties.push(Record {
                id,
                name: "pressure",
                data: json!(10),
            });
        }
        if step.is_multiple_of(3) {
            let id = self.events.len() as u64 + 1;
            self.events.push(Record {
                id,
                name: "overflow",
                data: json!({"step": step}),
            });
        }
    }
}

/// The Thing's state, shared by the generator and the SSE connections.
struct Thing {
    logs: Mutex<Logs>,
    /// The number of steps published, for waking connections.
    published: watch::Sender<u64>,
    rng: Mutex<StdRng>,
    /// Connections answered in each mode.
    honoured: AtomicUsize,
    replayed_all: AtomicUsize,
    stop: AtomicBool,
}

impl Thing {
    fn logs(&self) -> std::sync::MutexGuard<'_, Logs> {
        self.logs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn frame(record: &Record) -> Bytes {
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {}\n\n",
        record.id, record.name, record.data
    ))
}

fn sse(thing: &Arc<Thing>, which: Which, headers: &HeaderMap) -> Response {
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let replay_all = thing
        .rng
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .random_bool(0.5);
    let start = {
        let logs = thing.logs();
        let log = logs.log(which);
        if replay_all {
            thing.replayed_all.fetch_add(1, Ordering::Relaxed);
            log.len().saturating_sub(REPLAY_ALL_KEEP)
        } else {
            thing.honoured.fetch_add(1, Ordering::Relaxed);
            last_event_id.map_or(0, |after| log.partition_point(|r| r.id <= after))
        }
    };
    let state = (thing.clone(), thing.published.subscribe(), start, false);
    let body = futures::stream::unfold(
        state,
        move |(thing, mut published, next, hello)| async move {
            if !hello {
                let chunk = Bytes::from_static(b"retry: 200\n\n");
                return Some((
                    Ok::<_, std::io::Error>(chunk),
                    (thing, published, next, true),
                ));
            }
            loop {
                let record = thing.logs().log(which).get(next).cloned();
                if let Some(record) = record {
                    return Some((Ok(frame(&record)), (thing, published, next + 1, true)));
                }
                match tokio::time::timeout(Duration::from_secs(1), published.changed()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return None,
                    Err(_quiet) => {
                        let chunk = Bytes::from_static(b": heartbeat\n\n");
                        return Some((Ok(chunk), (thing, published, next, true)));
                    }
                }
            }
        },
    );
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// One webhook request: its idempotency id and body.
#[derive(Debug, Clone)]
struct Delivery {
    key: Option<String>,
    body: Value,
}

type Deliveries = Arc<Mutex<Vec<Delivery>>>;

async fn hook(State(deliveries): State<Deliveries>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    deliveries
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Delivery { key, body });
    StatusCode::OK
}

/// Starts the Thing, its generator and the webhook receiver; returns the TD's URL, the
/// webhook's URL and the generator, which ends after [`Thing::stop`] is set.
async fn servers(
    thing: Arc<Thing>,
    deliveries: Deliveries,
) -> (String, String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let td = json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "id": THING, "title": "Tank",
        "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
        "security": "nosec_sc",
        "properties": {
            "level": {"type": "number", "observable": true, "readOnly": true, "forms": [
                {"href": format!("{base}/properties/level"), "op": ["readproperty"]}
            ]},
            "pressure": {"type": "number", "observable": true, "readOnly": true, "forms": [
                {"href": format!("{base}/properties/pressure"), "op": ["readproperty"]}
            ]}
        },
        "events": {
            "overflow": {"data": {"type": "object"}, "forms": [
                {"href": format!("{base}/sse/events"), "op": ["subscribeevent"], "subprotocol": "sse"}
            ]}
        },
        "forms": [
            {"href": format!("{base}/sse/properties"), "op": ["observeallproperties"], "subprotocol": "sse"},
            {"href": format!("{base}/sse/events"), "op": ["subscribeallevents"], "subprotocol": "sse"}
        ]
    });
    let properties = {
        let thing = thing.clone();
        move |headers: HeaderMap| async move { sse(&thing, Which::Properties, &headers) }
    };
    let events = {
        let thing = thing.clone();
        move |headers: HeaderMap| async move { sse(&thing, Which::Events, &headers) }
    };
    let app = Router::new()
        .route("/td", get(move || async move { axum::Json(td) }))
        .route("/properties/{name}", get(|| async { axum::Json(json!(0)) }))
        .route("/sse/properties", get(properties))
        .route("/sse/events", get(events));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let hooks = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook_url = format!("http://{}/hook", hooks.local_addr().expect("address"));
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(deliveries);
    tokio::spawn(async move {
        let _ = axum::serve(hooks, app).await;
    });

    let generator = tokio::spawn(async move {
        let mut tick = tokio::time::interval(STEP);
        while !thing.stop.load(Ordering::SeqCst) {
            tick.tick().await;
            let steps = {
                let mut logs = thing.logs();
                logs.step();
                logs.steps
            };
            thing.published.send_replace(steps);
        }
    });
    (format!("{base}/td"), hook_url, generator)
}

fn rules_file(dir: &Path, hook_url: &str) -> PathBuf {
    let path = dir.join("rules.yaml");
    let text = format!(
        "rules:
  - id: level-high
    thing: \"{THING}\"
    property: level
    condition: {{ gt: 7 }}
    clear: {{ le: 3 }}
    actions: [hook]
  - id: pressure-high
    thing: \"{THING}\"
    property: pressure
    condition: {{ gt: 5 }}
    actions: [hook]
actions:
  hook: {{ type: webhook, url: \"{hook_url}\", on: [fired, resolved] }}
"
    );
    std::fs::write(&path, text).expect("rules file");
    path
}

/// One run of the dashboard; killed (SIGKILL) when dropped, if still running.
struct Run {
    child: Child,
    stderr: Option<std::thread::JoinHandle<String>>,
}

/// The loopback address run `run` serves its page on.
fn web_host(run: usize) -> String {
    format!("127.0.0.{}", run + 2)
}

impl Run {
    fn start(run: usize, td: &str, rules: &Path, state: &Path, output: &Path) -> Run {
        let web = format!("{}:0", web_host(run));
        let mut child = Command::new(BIN)
            .args(["--headless", "--web", &web, "--duration", "120s"])
            .args(["--thing", td])
            .arg("--rules")
            .arg(rules)
            .arg("--state")
            .arg(state)
            .arg("--output")
            .arg(output)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("the dashboard starts");
        let mut stderr = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Run {
            child,
            stderr: Some(stderr),
        }
    }

    /// SIGKILL, then the run's stderr.
    fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The complete lines of the output file, each parsed; a line still being written (no
/// newline yet) is left out.
fn read_lines(path: &Path) -> Vec<Value> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let end = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    bytes[..end]
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            serde_json::from_slice(line).unwrap_or_else(|e| {
                panic!(
                    "not a JSON line in the output: {:?}: {e}",
                    String::from_utf8_lossy(line)
                )
            })
        })
        .collect()
}

/// The base URL of the page of run `run`, from its `web` line in `lines`.
fn web_of(lines: &[Value], run: usize) -> Option<String> {
    let host = format!("http://{}:", web_host(run));
    lines.iter().find_map(|l| {
        let url = l["url"].as_str().filter(|_| l["type"] == "web")?;
        url.starts_with(&host).then(|| {
            let base = url.split("/#").next().unwrap_or(url);
            base.trim_end_matches('/').to_owned()
        })
    })
}

/// Reads the output file every 50 ms until `done` holds for its lines (returns `true`) or
/// `until` passes (returns `false`).
fn wait_for(path: &Path, until: Instant, mut done: impl FnMut(&[Value]) -> bool) -> bool {
    loop {
        if done(&read_lines(path)) {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// (name, id) → how many times, for lines of `kind` from the Thing.
fn counts(lines: &[Value], kind: &str, name_key: &str) -> BTreeMap<(String, u64), usize> {
    let mut counts = BTreeMap::new();
    for v in lines {
        if v["type"] != kind || v["thing"] != THING {
            continue;
        }
        let Some(id) = v["id"].as_str().and_then(|id| id.parse::<u64>().ok()) else {
            continue;
        };
        let name = v[name_key].as_str().unwrap_or_default().to_owned();
        *counts.entry((name, id)).or_default() += 1;
    }
    counts
}

/// The highest id of the lines of `kind`.
fn max_id(lines: &[Value], kind: &str) -> Option<u64> {
    lines
        .iter()
        .filter(|l| l["type"] == kind)
        .filter_map(|l| l["id"].as_str()?.parse::<u64>().ok())
        .max()
}

/// The published records of `which` as (name, id).
fn published(thing: &Thing, which: Which) -> BTreeSet<(String, u64)> {
    thing
        .logs()
        .log(which)
        .iter()
        .map(|r| (r.name.to_owned(), r.id))
        .collect()
}

/// (fired, resolved) episodes of `level-high` over the published `level` values.
fn level_episodes(thing: &Thing) -> (usize, usize) {
    let (mut firing, mut fired, mut resolved) = (false, 0, 0);
    for record in thing.logs().properties.iter().filter(|r| r.name == "level") {
        let value = record.data.as_i64().unwrap_or(0);
        if !firing && value > 7 {
            firing = true;
            fired += 1;
        } else if firing && value <= 3 {
            firing = false;
            resolved += 1;
        }
    }
    (fired, resolved)
}

/// Distinct webhook notifications: (rule, status) → ids, and the number of repeated ids.
fn notifications(deliveries: &Deliveries) -> (BTreeMap<(String, String), BTreeSet<String>>, usize) {
    let deliveries = deliveries.lock().unwrap_or_else(PoisonError::into_inner);
    let mut seen = BTreeSet::new();
    let mut repeats = 0;
    let mut by_kind: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for delivery in deliveries.iter() {
        let key = delivery
            .key
            .clone()
            .unwrap_or_else(|| panic!("a webhook without Idempotency-Key: {}", delivery.body));
        if !seen.insert(key.clone()) {
            repeats += 1;
            continue;
        }
        let alert = &delivery.body["alerts"][0];
        let rule = alert["labels"]["alertname"].as_str().unwrap_or_default();
        let status = alert["status"].as_str().unwrap_or_default();
        by_kind
            .entry((rule.to_owned(), status.to_owned()))
            .or_default()
            .insert(key);
    }
    (by_kind, repeats)
}

/// The acknowledgement and the silence the first run made, as the page at `base` shows them.
async fn ack_and_silence_shown(base: &str) -> Result<(), String> {
    let snapshot: Value = reqwest::get(format!("{base}/api/snapshot"))
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let alerts = &snapshot["alerts"];
    let acked = alerts["active"].as_array().is_some_and(|active| {
        active
            .iter()
            .any(|a| a["rule"] == "pressure-high" && a["acknowledged"]["comment"] == "restart test")
    });
    let silenced = alerts["silences"].as_array().is_some_and(|silences| {
        silences
            .iter()
            .any(|s| s["rule"] == "level-high" && s["thing"] == "urn:test:nothing-here")
    });
    match (acked, silenced) {
        (true, true) => Ok(()),
        _ => Err(format!(
            "acknowledged {acked}, silenced {silenced}: {alerts}"
        )),
    }
}

async fn post_json(base: &str, path: &str, body: Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .expect("POST");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "POST {path}: {status} {text}");
}

#[test]
fn killed_at_random_points_the_dashboard_loses_and_repeats_nothing() {
    let seed = std::env::var("RESTART_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs())
        });
    println!("RESTART_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let thing = Arc::new(Thing {
        logs: Mutex::new(Logs::default()),
        published: watch::channel(0).0,
        rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0x5eed)),
        honoured: AtomicUsize::new(0),
        replayed_all: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    });
    let deliveries = Deliveries::default();
    let (td, hook_url, generator) = runtime.block_on(servers(thing.clone(), deliveries.clone()));
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("restart-{}-{seed}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("test directory");
    let rules = rules_file(&dir, &hook_url);
    let state = dir.join("state");
    let output = dir.join("output.jsonl");
    let started = Instant::now();

    let mut checked_after_restart = 0;
    let mut last_stderr = String::new();
    let mut cut = 0;
    for run in 0..KILLS {
        let child = Run::start(run, &td, &rules, &state, &output);
        if run == 0 {
            // The first run acknowledges `pressure-high` once it fired, and adds a silence
            // (for a Thing that does not exist, so that no notification is held back), both
            // through the web API; the kills that follow must not lose them.
            let fired = |lines: &[Value]| {
                web_of(lines, 0).is_some()
                    && lines.iter().any(|l| {
                        l["type"] == "alert" && l["rule"] == "pressure-high" && l["kind"] == "fired"
                    })
            };
            if !wait_for(&output, Instant::now() + Duration::from_secs(20), fired) {
                let stderr = child.kill();
                panic!("the first run did not fire pressure-high within 20 s; stderr: {stderr}");
            }
            let base = web_of(&read_lines(&output), 0).expect("the first run's page");
            runtime.block_on(async {
                post_json(
                    &base,
                    "/api/alerts/acknowledge",
                    json!({"rule": "pressure-high", "thing": THING, "comment": "restart test"}),
                )
                .await;
                post_json(
                    &base,
                    "/api/silences",
                    json!({"rule": "level-high", "thing": "urn:test:nothing-here",
                           "duration_s": 3600, "comment": "restart test"}),
                )
                .await;
            });
        }
        let life = Duration::from_millis(rng.random_range(LIFE_MS.0..=LIFE_MS.1));
        let kill_at = Instant::now() + life;
        if run > 0 {
            // Once the page is up, the acknowledgement and the silence must be back.
            let mut base = None;
            if wait_for(&output, kill_at, |lines| {
                base = web_of(lines, run);
                base.is_some()
            }) && let Some(base) = base
            {
                if let Err(problem) = runtime.block_on(ack_and_silence_shown(&base)) {
                    let stderr = child.kill();
                    panic!("run {run}: after a restart: {problem}; stderr: {stderr}");
                }
                checked_after_restart += 1;
            }
        }
        std::thread::sleep(kill_at.saturating_duration_since(Instant::now()));
        last_stderr = child.kill();
        // What the next run cuts back: the lines after the last commit (a batch's lines
        // cut by the kill included).
        let bytes = std::fs::read(&output).unwrap_or_default();
        if bytes.last().is_some_and(|b| *b != b'\n') {
            cut += 1;
        }
    }
    println!(
        "{KILLS} kills in {:.1} s; the page was checked after {checked_after_restart} restarts; \
         {cut} kills cut a line in the middle",
        started.elapsed().as_secs_f64()
    );

    // The last run: the Thing stops publishing, and the run catches up with everything.
    thing.stop.store(true, Ordering::SeqCst);
    runtime.block_on(generator).expect("the generator ends");
    let steps = {
        let mut logs = thing.logs();
        logs.last_step();
        logs.steps
    };
    thing.published.send_replace(steps);
    let want_properties = published(&thing, Which::Properties);
    let want_events = published(&thing, Which::Events);
    let (want_fired, want_resolved) = level_episodes(&thing);
    let run = KILLS;
    let child = Run::start(run, &td, &rules, &state, &output);
    // Each stream keeps its order: the last run has caught up once the file holds the last
    // ids (published after the last kill).
    let last = |want: &BTreeSet<(String, u64)>| want.iter().map(|(_, id)| *id).max();
    let (last_property, last_event) = (last(&want_properties), last(&want_events));
    let caught_up = |lines: &[Value]| {
        web_of(lines, run).is_some()
            && max_id(lines, "property") == last_property
            && max_id(lines, "event") == last_event
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let complete = wait_for(&output, deadline, caught_up);
    let webhooks_done = || {
        let (by_kind, _) = notifications(&deliveries);
        let count = |rule: &str, status: &str| {
            by_kind
                .get(&(rule.to_owned(), status.to_owned()))
                .map_or(0, BTreeSet::len)
        };
        count("level-high", "firing") >= want_fired
            && count("level-high", "resolved") >= want_resolved
            && count("pressure-high", "firing") >= 1
    };
    while !webhooks_done() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let base = web_of(&read_lines(&output), run);
    let page = base
        .as_ref()
        .map(|base| runtime.block_on(ack_and_silence_shown(base)));
    let timeline = base.as_ref().map(|base| {
        runtime.block_on(async {
            let snapshot: Value = reqwest::get(format!("{base}/api/snapshot"))
                .await
                .expect("snapshot")
                .json()
                .await
                .expect("JSON");
            snapshot
        })
    });
    let stderr = child.kill();
    let lines = read_lines(&output);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        complete,
        "seed {seed}: the last run did not catch up in 20 s: the file holds up to property \
         {:?} (of {last_property:?}) and event {:?} (of {last_event:?}); stderr: {stderr}",
        max_id(&lines, "property"),
        max_id(&lines, "event"),
    );

    // Every property update and every event exactly once, over the whole run.
    for (kind, name_key, want) in [
        ("property", "property", &want_properties),
        ("event", "event", &want_events),
    ] {
        let counts = counts(&lines, kind, name_key);
        let missing: Vec<_> = want.iter().filter(|k| !counts.contains_key(*k)).collect();
        let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
        let unknown: Vec<_> = counts.keys().filter(|k| !want.contains(*k)).collect();
        assert!(
            missing.is_empty() && repeated.is_empty() && unknown.is_empty(),
            "seed {seed}: {kind} lines: {} published, missing {missing:?}, repeated \
             {repeated:?}, unknown {unknown:?}; last stderr: {stderr}; stderr of the run \
             before: {last_stderr}",
            want.len()
        );
    }
    // Every alert episode notified exactly once.
    let (by_kind, repeats) = notifications(&deliveries);
    let count = |rule: &str, status: &str| {
        by_kind
            .get(&(rule.to_owned(), status.to_owned()))
            .map_or(0, BTreeSet::len)
    };
    assert_eq!(
        (
            count("level-high", "firing"),
            count("level-high", "resolved"),
            count("pressure-high", "firing"),
            count("pressure-high", "resolved"),
        ),
        (want_fired, want_resolved, 1, 0),
        "seed {seed}: distinct webhook notifications (level fired, level resolved, pressure \
         fired, pressure resolved); {repeats} repeated ids; stderr: {stderr}"
    );
    // The acknowledgement and the silence outlived every kill.
    assert_eq!(page, Some(Ok(())), "seed {seed}: the last run's page");
    assert!(
        checked_after_restart >= KILLS / 2,
        "seed {seed}: the page was checked after only {checked_after_restart} restarts"
    );
    // Each run writes its page's address, then what it restored, before any item.
    for (i, line) in lines.iter().enumerate() {
        if line["type"] == "web" {
            let next = lines.get(i + 1).map(|l| l["type"].clone());
            assert!(
                next.is_none() || next == Some(json!("restored")),
                "seed {seed}: a web line followed by {next:?}"
            );
        }
    }
    let restored = lines
        .iter()
        .rev()
        .find(|l| l["type"] == "restored")
        .expect("the last run's restored line");
    assert!(
        restored["events"].as_u64().is_some_and(|n| n > 0)
            && restored["silences"].as_u64() == Some(1),
        "{restored}"
    );
    let snapshot = timeline.expect("the last run's page");
    assert_eq!(snapshot["restored"]["events"], restored["events"]);
    // The headless line names the state directory; the page does not show the server's path.
    assert!(restored["dir"].is_string(), "{restored}");
    let page = snapshot.to_string();
    let state_dir_text = state.display().to_string();
    assert!(
        snapshot["restored"].get("dir").is_none() && !page.contains(&state_dir_text),
        "the page shows the state directory: {}",
        snapshot["restored"]
    );
    // The page's timeline starts with the history restored from the store: the first event
    // in the file is on it again.
    if let Some(first) = lines
        .iter()
        .find(|l| l["type"] == "event")
        .map(|l| l["id"].clone())
    {
        let events = snapshot["events"].as_array().cloned().unwrap_or_default();
        assert!(
            events.iter().any(|e| e["event_id"] == first),
            "seed {seed}: event {first} of the first run is not on the last run's timeline"
        );
    }
    println!(
        "seed {seed}: {} property updates, {} events, {want_fired} episodes; {} connections \
         honoured Last-Event-ID, {} replayed everything; {repeats} webhook repeats by id",
        want_properties.len(),
        want_events.len(),
        thing.honoured.load(Ordering::Relaxed),
        thing.replayed_all.load(Ordering::Relaxed),
    );
}
