//! The `sse-cat` example as a user runs it: against real servers on 127.0.0.1, its stdout
//! a pipe that may close early.

#![cfg(feature = "client")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sse_cat() -> Command {
    // `cargo test` builds examples next to the test binaries' `deps` folder.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let path: PathBuf = dir.join(format!("sse-cat{}", std::env::consts::EXE_SUFFIX));
    assert!(path.exists(), "{} was not built", path.display());
    let mut command = Command::new(path);
    command.env_remove("RUST_LOG");
    command
}

/// A port on 127.0.0.1 that nobody listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server that answers every request with an endless event stream (an event every few
/// milliseconds until the client goes away); returns its URL.
fn endless_stream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(mut socket) = socket else { return };
            std::thread::spawn(move || {
                let mut head = [0u8; 4096];
                let _ = socket.read(&mut head);
                let _ =
                    socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n");
                for n in 0u64.. {
                    let event = format!("id: {n}\nevent: tick\ndata: {{\"n\":{n}}}\n\n");
                    if socket.write_all(event.as_bytes()).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
        }
    });
    url
}

#[test]
fn a_refused_connection_reads_once_in_words() {
    let url = format!("http://127.0.0.1:{}/events", closed_port());
    let out = sse_cat()
        .args([url.as_str(), "--max-attempts", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.first(), Some(&"state: connecting"), "{stderr}");
    assert_eq!(lines.last(), Some(&"state: closed: failed"), "{stderr}");
    // A state line only when the state changes.
    let states: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("state: "))
        .collect();
    assert!(states.windows(2).all(|w| w[0] != w[1]), "{stderr}");
    assert_eq!(stderr.matches("state: closed").count(), 1, "{stderr}");
    let last_error = lines
        .iter()
        .find(|l| l.starts_with("error: gave up"))
        .unwrap_or_else(|| panic!("a final error: {stderr}"));
    assert!(last_error.contains("connection refused"), "{last_error}");
    // The failed attempt is told once, not once by the error and again as its cause.
    assert_eq!(
        last_error.matches("connecting failed").count(),
        1,
        "{last_error}"
    );
    // Display text only, no Debug dump of the HTTP stack.
    assert!(
        !stderr.contains("Error {") && !stderr.contains("kind:"),
        "{stderr}"
    );
}

#[test]
fn an_unresolvable_host_says_so() {
    let out = sse_cat()
        .args(["http://no-such-host.invalid/events", "--max-attempts", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("could not resolve host"), "{stderr}");
}

#[test]
fn help_and_version_are_answered_not_taken_for_a_url() {
    for flag in ["--help", "-h"] {
        let out = sse_cat().arg(flag).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("Usage: sse-cat"), "{text}");
        assert!(text.contains("--last-event-id"), "{text}");
    }
    let out = sse_cat().arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("sse-cat {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_closed_stdout_ends_it_quietly() {
    let url = endless_stream();
    let mut child = sse_cat()
        .arg(&url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let event: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(event["type"], "tick");
    drop(stdout);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("sse-cat went on after its stdout was closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}
