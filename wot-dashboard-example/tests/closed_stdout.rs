//! `wot-dashboard-example --headless | head -1`: the real binary with its stdout a pipe that
//! the reader closes after one line ends quietly, without a panic or a message.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn headless_ends_quietly_when_its_output_is_closed() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wot-dashboard-example"))
        .args(["--headless", "--duration", "60s"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the dashboard starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("a first line");
    let line: serde_json::Value = serde_json::from_str(&first).expect("a JSON line");
    assert!(line["type"].is_string(), "{first}");
    drop(stdout);
    // The next line it writes fails: it must stop then, long before `--duration`.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the dashboard went on after its stdout was closed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    assert!(status.success(), "{status}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}
