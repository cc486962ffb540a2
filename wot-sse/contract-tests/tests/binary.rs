//! The built binary: it listens on the port given with `--port`, answers `GET /`, and exits
//! with success after `DELETE /`, also when nobody reads its stderr any more.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// Kills the child if the test fails before it exits by itself.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_serves_on_its_port_and_exits_on_delete() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sse-contract-service"))
        .args(["--port", &port.to_string()])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut running = Running(child);

    // The service logs one line once it is listening. Then the pipe is closed: a harness that
    // stops reading the service's stderr must not break it.
    let wanted = format!("127.0.0.1:{port}");
    let listening = tokio::task::spawn_blocking(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .find(|line| line.contains("listening"))
    });
    let line = tokio::time::timeout(Duration::from_secs(30), listening)
        .await
        .expect("no 'listening' line")
        .unwrap()
        .expect("the service ended before listening");
    assert!(line.contains(&wanted), "{line}");

    let http = reqwest::Client::new();
    let url = format!("http://{wanted}/");
    let body: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["name"], "wot-sse");
    assert_eq!(body["capabilities"].as_array().unwrap().len(), 9);

    let deleted = http.delete(&url).send().await.unwrap();
    assert_eq!(deleted.status(), reqwest::StatusCode::NO_CONTENT);
    let status = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(status) = running.0.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the service did not exit after DELETE /");
    assert!(status.success(), "{status}");
}
