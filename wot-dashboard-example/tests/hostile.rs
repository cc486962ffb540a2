//! The real binary against hostile Things and impossible options: it stops in bounded time
//! with a clear message and a non-zero status, never hangs, never exits 0 with frozen data,
//! and never lets a control character from a Thing reach the terminal.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_wot-dashboard-example");

/// Runs the binary with `args`; fails the test if it takes longer than `limit`.
fn run_within(args: &[&str], limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        // No state directory: these runs must neither read nor write the user's.
        .arg("--no-state")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the dashboard starts");
    // Read both pipes on threads so that a chatty child cannot block on a full pipe.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let err = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr.read_to_end(&mut bytes);
        bytes
    });
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let output = Output {
                status,
                stdout: out.join().expect("stdout reader"),
                stderr: err.join().expect("stderr reader"),
            };
            return (output, started.elapsed());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A TCP server that accepts every connection and never answers; the connections stay open
/// for as long as the test runs.
fn silent_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => held.push(stream),
                Err(_) => break,
            }
        }
    });
    format!("http://{addr}/td")
}

#[test]
fn a_td_server_that_never_answers_cannot_outlast_duration() {
    let url = silent_server();
    let (output, took) = run_within(
        &["--headless", "--thing", &url, "--duration", "2s"],
        Duration::from_secs(20),
    );
    assert!(took >= Duration::from_secs(2), "stopped early: {took:?}");
    assert!(
        !output.status.success(),
        "exit 0 although nothing was watched"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "error: --duration 2s ran out before the Thing Descriptions loaded; still waiting for {url}"
        )),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn a_td_server_that_never_answers_times_out() {
    let url = silent_server();
    let (output, took) = run_within(
        &["--headless", "--thing", &url, "--td-timeout", "1s"],
        Duration::from_secs(20),
    );
    assert!(took >= Duration::from_secs(1), "stopped early: {took:?}");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "error: no answer from {url} within 1s (--td-timeout)"
        )),
        "{stderr}"
    );
}

#[test]
fn impossible_options_are_refused_at_start() {
    let cases: &[(&[&str], &str)] = &[
        (&["--sim-tick", "0s"], "--sim-tick"),
        (&["--duration", "0s"], "--duration"),
        (&["--td-timeout", "0ms"], "--td-timeout"),
        (&["--thing", ""], "--thing"),
        (&["--directory", "not a url"], "--directory"),
        (&["--log-bytes", "0"], "--log-bytes"),
        (&["--log-entries", "0"], "--log-entries"),
        (&["--history-bytes", "7"], "--history-bytes"),
        (
            &["--serve-only", "--thing", "http://127.0.0.1:9/td"],
            "--serve-only",
        ),
        (&["--basic-auth", "nocolon"], "--basic-auth"),
    ];
    for (args, named) in cases {
        let mut all = vec!["--headless", "--duration", "30s"];
        all.extend_from_slice(args);
        let (output, _) = run_within(&all, Duration::from_secs(20));
        assert!(!output.status.success(), "{args:?} accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(named), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?} started anyway");
    }
    // A secret is never echoed, even when refused.
    let (output, _) = run_within(
        &["--headless", "--basic-auth", "user:sec\nret"],
        Duration::from_secs(20),
    );
    assert!(!output.status.success());
    assert!(!String::from_utf8_lossy(&output.stderr).contains("sec"));
}

/// A hostile Thing: a TD whose id, title and property name carry terminal escape sequences,
/// an SSE stream sending invalid data laced with more, and a directory that also lists an
/// invalid TD whose error quotes a hostile property name. `/unusable` is the same Thing
/// without a `readproperty` form, which the dashboard refuses with an error quoting its id
/// and property name.
async fn hostile_thing_server() -> String {
    const ESC: &str = "\u{1b}";
    let thing = |forms: serde_json::Value| {
        json!({
            "@context": "https://www.w3.org/2022/wot/td/v1.1",
            "id": format!("urn:evil:{ESC}]0;pwned\u{7}{ESC}[2J"),
            "title": format!("Evil{ESC}[31m\r\nThing\u{9b}6n"),
            "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
            "security": "nosec_sc",
            "properties": {
                format!("te{ESC}[5mmp"): {"type": "number", "forms": forms}
            }
        })
    };
    let observe = json!({"href": "/sse", "op": ["observeproperty"], "subprotocol": "sse"});
    let td = thing(json!([{"href": "/p", "op": ["readproperty"]}, observe]));
    let unusable = thing(json!([observe]));
    let invalid = json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "title": format!("Bad{ESC}[2J"),
        "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
        "security": "nosec_sc",
        "properties": {
            format!("range{ESC}[2J"): {
                "type": "number", "minimum": 10, "maximum": 1,
                "forms": [{"href": "/sse", "op": ["observeproperty"], "subprotocol": "sse"}]
            }
        }
    });
    let listing = json!([td, invalid]);
    let sse = || async {
        let body = format!("data: {{not json {ESC}[2J{ESC}]0;x\u{7}\n\n").repeat(3);
        ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
    };
    let app = Router::new()
        .route("/things", get(move || async move { axum::Json(listing) }))
        .route(
            "/unusable",
            get(move || async move { axum::Json(unusable) }),
        )
        .route("/sse", get(sse))
        .route("/p", get(|| async { axum::Json(json!(1)) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/")
}

fn assert_no_control_characters(output: &Output) {
    for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "a control character reached {stream}: {text:?}"
        );
    }
}

#[test]
fn escape_sequences_from_a_thing_never_reach_the_terminal() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (tx, rx) = mpsc::channel();
    runtime.spawn(async move {
        let _ = tx.send(hostile_thing_server().await);
    });
    let base = rx.recv_timeout(Duration::from_secs(10)).expect("server up");

    // Watching: JSON lines, problems and log lines on stderr.
    let (output, _) = run_within(
        &["--headless", "--directory", &base, "--duration", "3s"],
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("skipping a TD of the directory"),
        "{stderr}"
    );
    assert_no_control_characters(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(r"urn:evil:\u001b]0;pwned\u0007"),
        "{stdout}"
    );

    // Refused: the error quotes the Thing's id and the property name, escaped.
    let (output, _) = run_within(
        &["--headless", "--thing", &format!("{base}unusable")],
        Duration::from_secs(30),
    );
    assert!(!output.status.success());
    assert_no_control_characters(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(r"urn:evil:\e]0;pwned\x07\e[2J") && stderr.contains(r"te\e[5mmp"),
        "{stderr}"
    );
    drop(runtime);
}
