//! The simulator over real HTTP on 127.0.0.1: directory, operations, SSE replay and chaos.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use super::model::THINGS;
use super::{AbortOnDrop, SimConfig, SimError, Simulator};

fn fast(chaos: bool) -> SimConfig {
    SimConfig {
        tick: Duration::from_millis(10),
        heartbeat: Duration::from_millis(100),
        chaos,
        ..SimConfig::default()
    }
}

/// One SSE block as it came over the wire.
#[derive(Debug, Clone, PartialEq)]
struct Block {
    id: u64,
    event: String,
    data: Value,
}

/// What one connection delivered before it ended or `limit` blocks arrived.
struct Read {
    blocks: Vec<Block>,
    comments: usize,
    /// The body failed or ended early (a cut connection) rather than reaching `limit`.
    cut: bool,
}

/// Reads complete SSE blocks from `url`, as a strict client would: an unfinished block at the
/// end of the body is discarded.
async fn read(url: &str, last_event_id: Option<u64>, limit: usize) -> Read {
    let client = reqwest::Client::new();
    let mut request = client.get(url).header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id.to_string());
    }
    let mut out = Read {
        blocks: Vec::new(),
        comments: 0,
        cut: false,
    };
    let response = match request.send().await {
        Ok(r) if r.status().is_success() => r,
        _ => {
            out.cut = true;
            return out;
        }
    };
    let mut body = response.bytes_stream();
    let mut pending = String::new();
    while out.blocks.len() < limit {
        let chunk = match tokio::time::timeout(Duration::from_secs(5), body.next()).await {
            Ok(Some(Ok(chunk))) => chunk,
            Ok(_) => {
                out.cut = true;
                break;
            }
            Err(_) => panic!("no bytes for 5 s from {url}"),
        };
        pending.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        while let Some(end) = pending.find("\n\n") {
            let block: String = pending.drain(..end + 2).collect();
            if block.starts_with(':') {
                out.comments += 1;
                continue;
            }
            let mut fields = block.lines().filter_map(|l| l.split_once(": "));
            let (Some(("id", id)), Some(("event", event)), Some(("data", data))) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue; // the `retry:` hint
            };
            out.blocks.push(Block {
                id: id.parse().expect("numeric id"),
                event: event.to_owned(),
                data: serde_json::from_str(data).expect("JSON data"),
            });
        }
    }
    out
}

#[tokio::test]
async fn directory_lists_every_thing_and_each_td_has_its_own_url() {
    let sim = Simulator::start(fast(false)).await.expect("start");
    let directory: Vec<Value> = reqwest::get(sim.directory_url())
        .await
        .expect("GET /things")
        .json()
        .await
        .expect("JSON array");
    assert_eq!(directory.len(), THINGS.len());
    for (url, listed) in sim.thing_urls().iter().zip(&directory) {
        let td: Value = reqwest::get(url)
            .await
            .expect("GET TD")
            .json()
            .await
            .expect("TD");
        assert_eq!(&td, listed);
        assert_eq!(td["base"], json!(sim.base_url()));
    }
}

#[tokio::test]
async fn read_write_and_invoke_follow_the_http_basic_profile() {
    let sim = Simulator::start(fast(false)).await.expect("start");
    let client = reqwest::Client::new();
    let base = sim.base_url();
    let target = format!("{base}things/fridge-1/properties/targetTemperature");
    let put = client
        .put(&target)
        .json(&json!(2.5))
        .send()
        .await
        .expect("PUT");
    assert_eq!(put.status(), 204);
    let read: Value = client
        .get(&target)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(read, json!(2.5));
    let refused = client
        .put(format!("{base}things/fridge-1/properties/temperature"))
        .json(&json!(1))
        .send()
        .await
        .expect("PUT");
    assert_eq!(refused.status(), 405);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let stop: Value = client
        .post(format!("{base}things/pump-1/actions/stop"))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    assert_eq!(stop, json!({ "running": false }));
    let running: Value = client
        .get(format!("{base}things/pump-1/properties/running"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(running, json!(false));
}

#[tokio::test]
async fn a_new_observer_gets_current_values_then_live_ones() {
    let sim = Simulator::start(fast(false)).await.expect("start");
    let url = format!("{}things/pump-1/sse/properties/pressure", sim.base_url());
    let read = read(&url, None, 5).await;
    assert!(
        read.blocks
            .iter()
            .all(|b| b.event == "pressure" && b.data.is_number())
    );
    assert!(read.blocks.windows(2).all(|w| w[0].id < w[1].id));
}

#[tokio::test]
async fn sse_resumes_after_last_event_id_with_nothing_lost_or_repeated() {
    let sim = Simulator::start(fast(false)).await.expect("start");
    let url = format!("{}things/air-1/sse/properties", sim.base_url());
    let reference = read(&url, Some(0), 40).await.blocks;
    let first = read(&url, Some(0), 10).await.blocks;
    let resume_from = first.last().expect("ten blocks").id;
    // Let the world move on while we are away.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let rest = read(&url, Some(resume_from), 30).await.blocks;
    let joined: Vec<Block> = first.into_iter().chain(rest).collect();
    assert_eq!(joined, reference);
}

#[tokio::test]
async fn quiet_streams_get_heartbeat_comments() {
    let sim = Simulator::start(SimConfig {
        tick: Duration::from_secs(3600),
        ..fast(false)
    })
    .await
    .expect("start");
    let url = format!("{}things/solar-1/sse/events", sim.base_url());
    let client = reqwest::Client::new();
    let response = client.get(&url).send().await.expect("GET");
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    while !seen.contains(": heartbeat\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(2), body.next())
            .await
            .expect("a heartbeat within 2 s")
            .expect("open")
            .expect("bytes");
        seen.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
    }
    assert!(seen.starts_with("retry: 500\n\n"));
}

/// The raw text of a stream until `want` data blocks arrived.
async fn raw(url: &str, last_event_id: Option<u64>, want: usize) -> String {
    let client = reqwest::Client::new();
    let mut request = client.get(url);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id.to_string());
    }
    let mut body = request.send().await.expect("GET").bytes_stream();
    let mut seen = String::new();
    while seen.matches("\ndata: ").count() < want {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("data within 5 s")
            .expect("open")
            .expect("bytes");
        seen.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
    }
    seen
}

#[tokio::test]
async fn a_new_event_subscriber_first_learns_where_to_resume() {
    let sim = Simulator::start(fast(false)).await.expect("start");
    let url = format!("{}things/air-1/sse/events", sim.base_url());
    let text = raw(&url, None, 1).await;
    // Nothing to replay: the position comes first, as an id-only block, so a client cut before
    // its first event resumes from where it subscribed.
    let rest = text.strip_prefix("retry: 500\n\nid: ").expect("hello");
    let (position, rest) = rest.split_once("\n\n").expect("id-only block");
    let position: u64 = position.parse().expect("numeric id");
    // The initial property values of air-1 are in the log already.
    assert!(position >= 3, "{position}");
    let first_event = rest
        .split("\n\n")
        .find(|b| b.starts_with("id: "))
        .expect("an event");
    let resumed = raw(&url, Some(position), 1).await;
    assert!(
        resumed.starts_with(&format!("retry: 500\n\n{first_event}\n\n")),
        "{resumed:?} does not start with {first_event:?}"
    );
    // Observers get the current values, each with its own id, and no position block.
    let properties = raw(
        &format!("{}things/air-1/sse/properties", sim.base_url()),
        None,
        1,
    )
    .await;
    assert!(
        properties.starts_with("retry: 500\n\nid: "),
        "{properties:?}"
    );
    assert!(properties.contains("\nevent: "), "{properties:?}");
}

/// Follows one SSE URL through `--chaos` like a resuming client until `want` blocks arrived.
async fn follow(url: &str, want: usize) -> (Vec<Block>, usize) {
    let mut blocks: Vec<Block> = Vec::new();
    let mut cuts = 0;
    while blocks.len() < want {
        let last = blocks.last().map_or(0, |b| b.id);
        let read = read(url, Some(last), want - blocks.len()).await;
        cuts += usize::from(read.cut);
        blocks.extend(read.blocks);
    }
    (blocks, cuts)
}

#[tokio::test]
async fn under_chaos_a_resuming_client_gets_every_record_once_and_in_order() {
    let sim = Simulator::start(fast(true)).await.expect("start");
    let base = sim.base_url();
    let properties = format!("{base}things/fridge-1/sse/properties");
    let events = format!("{base}things/fridge-1/sse/events");
    let ((props, prop_cuts), (evts, _)) =
        tokio::join!(follow(&properties, 150), follow(&events, 2));
    assert!(prop_cuts > 0, "chaos never cut a connection");
    assert!(props.windows(2).all(|w| w[0].id < w[1].id), "out of order");
    // Property and event ids of one Thing share one sequence: together they leave no gap.
    let up_to = props
        .last()
        .expect("blocks")
        .id
        .min(evts.last().expect("events").id);
    let mut ids: Vec<u64> = props.iter().chain(&evts).map(|b| b.id).collect();
    ids.retain(|id| *id <= up_to);
    ids.sort_unstable();
    let expected: Vec<u64> = (1..=up_to).collect();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn impossible_settings_are_refused() {
    for config in [
        SimConfig {
            tick: Duration::ZERO,
            ..SimConfig::default()
        },
        SimConfig {
            heartbeat: Duration::ZERO,
            ..SimConfig::default()
        },
        SimConfig {
            chaos_rate: f64::NAN,
            ..SimConfig::default()
        },
    ] {
        let error = Simulator::start(config).await.err().expect("refused");
        assert!(matches!(error, SimError::Config(_)), "{error}");
    }
}

#[tokio::test]
async fn a_task_that_ends_is_reported_with_its_panic() {
    let mut sim = Simulator::start(fast(false)).await.expect("simulator");
    // Stand in for a ticker that panics (the old one is aborted when replaced).
    sim.ticker = AbortOnDrop(tokio::spawn(async { panic!("step {} failed", 7) }));
    let error = tokio::time::timeout(Duration::from_secs(10), sim.failure())
        .await
        .expect("reported at once");
    assert_eq!(
        error.to_string(),
        "the simulator ticker stopped: panicked: step 7 failed"
    );
}

#[tokio::test]
async fn a_fleet_serves_every_thing_with_a_unique_stable_id_and_replay() {
    let config = SimConfig {
        things: 300,
        ..fast(false)
    };
    let sim = Simulator::start(config).await.expect("start");
    let directory: Vec<Value> = reqwest::get(sim.directory_url())
        .await
        .expect("GET /things")
        .json()
        .await
        .expect("JSON array");
    assert_eq!(directory.len(), 300);
    let ids: std::collections::HashSet<&str> = directory
        .iter()
        .map(|td| td["id"].as_str().expect("an id"))
        .collect();
    assert_eq!(ids.len(), 300, "ids are unique");
    // The first four keep their names; the others number on.
    assert_eq!(directory[1]["id"], json!("urn:wot-live:sim:pump-1"));
    assert_eq!(directory[5]["id"], json!("urn:wot-live:sim:pump-2"));
    assert_eq!(directory[299]["id"], json!("urn:wot-live:sim:solar-75"));
    assert_eq!(directory[5]["title"], json!("Water pump 2"));
    let urls = sim.thing_urls();
    assert_eq!(urls.len(), 300);
    let last: Value = reqwest::get(&urls[299])
        .await
        .expect("GET TD")
        .json()
        .await
        .expect("TD");
    assert_eq!(last, directory[299]);
    // Past the fleet, and non-canonical names: 404.
    for slug in ["solar-76", "pump-0", "pump-02", "pump-+2", "pump", "tap-1"] {
        let status = reqwest::get(format!("{}things/{slug}", sim.base_url()))
            .await
            .expect("GET")
            .status();
        assert_eq!(status, 404, "{slug}");
    }
    // A Thing far in the fleet: ids increase on its stream, and replay after an id sends
    // exactly the records after it.
    let url = format!("{}things/solar-75/sse/properties", sim.base_url());
    let first = read(&url, None, 12).await;
    let ids: Vec<u64> = first.blocks.iter().map(|b| b.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let resume = ids[5];
    let again = read(&url, Some(resume), 6).await;
    assert_eq!(again.blocks, first.blocks[6..12]);
    // Every Thing of the fleet changes: one ticker steps them all.
    let url = format!("{}things/air-40/sse/properties", sim.base_url());
    let read_air = read(&url, None, 8).await;
    assert_eq!(read_air.blocks.len(), 8);
}

#[test]
fn a_fleet_is_the_same_in_every_run_and_the_first_four_are_unchanged() {
    use super::model::{World, index_of, slug};
    let four = World::new(7);
    let fleet = World::fleet(7, 40);
    assert_eq!(fleet.len(), 40);
    for index in 0..4 {
        assert_eq!(four.properties(index), fleet.properties(index));
        // The copies start where their kind starts.
        assert_eq!(four.properties(index), fleet.properties(index + 36));
    }
    // Same seed and count, same run.
    let mut a = World::fleet(3, 40);
    let mut b = World::fleet(3, 40);
    for _ in 0..100 {
        assert_eq!(a.step(), b.step());
    }
    for index in [0, 1, 3, 4, 39, 9_999] {
        assert_eq!(index_of(&slug(index), 10_000), Some(index), "{index}");
    }
    assert_eq!(index_of(&slug(40), 40), None);
    assert_eq!(slug(0), "fridge-1");
    assert_eq!(slug(7), "solar-2");
}

#[tokio::test]
async fn a_fleet_size_outside_the_limits_is_refused() {
    for things in [0, super::MAX_THINGS + 1] {
        let config = SimConfig {
            things,
            ..SimConfig::default()
        };
        assert!(matches!(
            Simulator::start(config).await,
            Err(SimError::Config(_))
        ));
    }
}
