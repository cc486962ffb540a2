//! End to end: the real binary, its embedded simulator and the headless pipeline
//! (`wot-events` streams over `wot-sse`, `wot-alerts` rules), read as JSON lines.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const THINGS: [&str; 4] = [
    "urn:wot-live:sim:fridge-1",
    "urn:wot-live:sim:pump-1",
    "urn:wot-live:sim:air-1",
    "urn:wot-live:sim:solar-1",
];

/// Kills the child when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the dashboard headless and yields its stdout lines as JSON.
fn headless(args: &[&str]) -> (Running, mpsc::Receiver<Value>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wot-dashboard-example"))
        // No state directory: these runs must neither read nor write the user's.
        .args(["--headless", "--duration", "60s", "--no-state"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the dashboard binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line: {line:?}: {e}"));
            if tx.send(value).is_err() {
                break;
            }
        }
    });
    (Running(child), rx)
}

/// What a run has shown so far.
#[derive(Default, Debug)]
struct Seen {
    property_things: BTreeSet<String>,
    events: usize,
    fired: BTreeSet<(String, String)>,
    fired_then_resolved: Option<(String, String)>,
    /// (Thing, stream) of the connections reported open.
    open_links: BTreeSet<(String, String)>,
}

impl Seen {
    fn add(&mut self, line: &Value) {
        let text = |key: &str| line[key].as_str().unwrap_or_default().to_owned();
        match line["type"].as_str() {
            Some("property") => {
                assert!(line["value"] != Value::Null, "{line}");
                self.property_things.insert(text("thing"));
            }
            Some("event") => {
                assert!(line["data"].is_object(), "{line}");
                self.events += 1;
            }
            Some("alert") => {
                let key = (text("rule"), text("thing"));
                match line["kind"].as_str() {
                    Some("fired") => {
                        assert!(!text("summary").is_empty(), "{line}");
                        self.fired.insert(key);
                    }
                    Some("resolved") if self.fired.contains(&key) => {
                        self.fired_then_resolved = Some(key);
                    }
                    _ => {}
                }
            }
            Some("connection") => {
                let state = text("state");
                assert!(
                    ["connecting", "open", "reconnecting", "closed"].contains(&state.as_str()),
                    "{line}"
                );
                if state == "open" {
                    self.open_links.insert((text("thing"), text("stream")));
                }
            }
            other => panic!("unknown line type {other:?}: {line}"),
        }
    }

    fn complete(&self) -> bool {
        self.property_things.len() == THINGS.len()
            && self.open_links.len() == 2 * THINGS.len()
            && self.events > 0
            && self.fired_then_resolved.is_some()
    }
}

#[test]
fn headless_run_prints_properties_events_connections_and_an_alert_that_resolves() {
    let (_child, lines) = headless(&["--seed", "7", "--sim-tick", "50ms"]);
    let mut seen = Seen::default();
    let give_up = Instant::now() + Duration::from_secs(30);
    while !seen.complete() {
        let left = give_up.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => seen.add(&line),
            Err(_) => panic!("after 30 s the output still lacks something: {seen:?}"),
        }
    }
    let expected: BTreeSet<String> = THINGS.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(seen.property_things, expected);
    // One connection for all properties (`*`) and one for the events, per Thing.
    let links: BTreeSet<(String, String)> = THINGS
        .iter()
        .flat_map(|t| ["*", "events"].map(|s| ((*t).to_owned(), s.to_owned())))
        .collect();
    assert_eq!(seen.open_links, links);
}

#[test]
fn duration_stops_the_run_and_serve_only_prints_urls() {
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_wot-dashboard-example"))
        .args(["--headless", "--duration", "1s", "--sim-tick", "50ms"])
        .stdout(Stdio::null())
        .status()
        .expect("runs");
    assert!(status.success());
    assert!(started.elapsed() < Duration::from_secs(20));

    let output = Command::new(env!("CARGO_BIN_EXE_wot-dashboard-example"))
        .args(["--serve-only", "--duration", "1s"])
        .output()
        .expect("runs");
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    assert!(text.contains("directory: http://127.0.0.1:"), "{text}");
    let urls = |kind: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(kind))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(urls("thing:").len(), 4, "{text}");
    // The streams an SSE client such as sse-cat reads: all properties and all events of each.
    let streams = urls("sse:");
    assert_eq!(streams.len(), 8, "{text}");
    assert!(
        streams[2].ends_with("/things/pump-1/sse/properties"),
        "{text}"
    );
    assert!(streams[3].ends_with("/things/pump-1/sse/events"), "{text}");
    assert!(
        text.contains("--example sse-cat -- http://127.0.0.1:"),
        "{text}"
    );
}

#[test]
fn serve_only_stream_urls_serve_server_sent_events() {
    let mut server = Command::new(env!("CARGO_BIN_EXE_wot-dashboard-example"))
        .args(["--serve-only", "--duration", "30s", "--sim-tick", "50ms"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the simulator starts");
    let out = BufReader::new(server.stdout.take().expect("stdout")).lines();
    let _server = Running(server);
    let streams: Vec<String> = out
        .map_while(Result::ok)
        .filter_map(|l| {
            l.strip_prefix("sse:")
                .map(|u| u.split_whitespace().next().unwrap_or_default().to_owned())
        })
        .take(8)
        .collect();
    assert_eq!(streams.len(), 8);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        for url in &streams {
            let response = reqwest::get(url).await.expect("GET");
            assert!(
                response.status().is_success(),
                "{url}: {}",
                response.status()
            );
            let kind = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            assert!(kind.starts_with("text/event-stream"), "{url}: {kind}");
        }
    });
}

#[test]
fn real_things_mode_watches_a_directory_and_single_tds() {
    let mut server = Command::new(env!("CARGO_BIN_EXE_wot-dashboard-example"))
        .args(["--serve-only", "--duration", "30s", "--sim-tick", "50ms"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the simulator starts");
    let mut out = BufReader::new(server.stdout.take().expect("stdout")).lines();
    let _server = Running(server);
    let directory_line = out.next().expect("a line").expect("text");
    let base = directory_line
        .split_whitespace()
        .nth(1)
        .expect("directory: URL")
        .to_owned();
    let pump = out.nth(1).expect("lines").expect("text");
    let pump = pump
        .split_whitespace()
        .nth(1)
        .expect("thing: URL")
        .to_owned();
    assert!(pump.ends_with("/things/pump-1"), "{pump}");

    // The base URL, and the listing URL itself (no request for `/things/things`).
    for directory in [base.clone(), format!("{base}things")] {
        let (_child, lines) = headless(&["--directory", &directory]);
        let mut things = BTreeSet::new();
        while things.len() < THINGS.len() {
            let line = lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("{directory}: only saw {things:?}"));
            things.insert(line["thing"].as_str().unwrap_or_default().to_owned());
        }
    }

    let (_child, lines) = headless(&["--thing", &pump]);
    for _ in 0..10 {
        let line = lines.recv_timeout(Duration::from_secs(20)).expect("a line");
        assert_eq!(line["thing"], "urn:wot-live:sim:pump-1", "{line}");
    }
}

#[test]
fn a_bad_rules_file_is_reported_with_its_name() {
    let dir = std::env::temp_dir().join(format!("dash-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("broken.yaml");
    std::fs::write(
        &path,
        "rules:\n  - id: x\n    property: p\n    condition: { gt: oops }\n",
    )
    .expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_wot-dashboard-example"))
        .args(["--headless", "--duration", "5s", "--rules"])
        .arg(&path)
        .output()
        .expect("runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken.yaml"), "{stderr}");
}

#[test]
fn rules_that_do_not_fit_are_warned_about_or_refused_with_strict_rules() {
    let dir = std::env::temp_dir().join(format!("dash-typo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("typo.yaml");
    std::fs::write(
        &path,
        "rules:
  - { id: typo, thing: 'urn:wot-live:sim:pump-1', property: presure, condition: { gt: 7.5 } }
  - { id: slug, thing: pump-1, property: pressure, condition: { gt: 7.5 } }
",
    )
    .expect("write");
    let path = path.to_str().expect("a UTF-8 path").to_owned();
    let (_child, lines) = headless(&["--rules", &path, "--sim-tick", "50ms"]);
    let mut warnings = Vec::new();
    while warnings.len() < 2 {
        let line = lines.recv_timeout(Duration::from_secs(20)).expect("a line");
        if line["type"] == "rule_warning" {
            warnings.push(line["text"].as_str().unwrap_or_default().to_owned());
        }
    }
    assert!(
        warnings[0].contains("`pump-1`")
            && warnings[0].contains("did you mean `urn:wot-live:sim:pump-1`?"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].contains("did you mean `pressure`?"),
        "{warnings:?}"
    );

    let output = Command::new(env!("CARGO_BIN_EXE_wot-dashboard-example"))
        .args([
            "--headless",
            "--duration",
            "20s",
            "--strict-rules",
            "--rules",
            &path,
        ])
        .output()
        .expect("runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--strict-rules: 2 rule problem(s)")
            && stderr.contains("did you mean `pressure`?"),
        "{stderr}"
    );
    assert!(
        output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}
