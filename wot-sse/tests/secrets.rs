//! Tokens never show up in log lines (all crates, TRACE level), `Debug` output or error text.

// The HTTP client is the `client` feature; without it only the parser tests run.
#![cfg(feature = "client")]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tracing_subscriber::fmt::MakeWriter;
use wiremock::matchers::{path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};
use wot_sse::{ReconnectPolicy, SseClient};

const TOKEN: &str = "TOKEN-7f3a9c-do-not-log";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn tokens_appear_in_no_log_line_debug_output_or_error() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let other = MockServer::start().await;
    Mock::given(path("/other"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&other)
        .await;
    let server = MockServer::start().await;
    Mock::given(path("/flaky"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/flaky"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    Mock::given(path("/query"))
        .and(query_param("access_token", TOKEN))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("location", format!("{}/other", other.uri()).as_str()),
        )
        .mount(&server)
        .await;

    let client = SseClient::builder()
        .reconnect(ReconnectPolicy::new().initial_delay(Duration::ZERO))
        .build()
        .unwrap();
    let mut texts = Vec::new();
    let requests = [
        client
            .get(format!("{}/flaky", server.uri()))
            .bearer_token(TOKEN),
        client
            .get(format!("{}/flaky", server.uri()))
            .header("authorization", format!("Bearer {TOKEN}")),
        client
            .get(format!("{}/flaky", server.uri()))
            .token_provider(|| async { Ok::<_, std::io::Error>(TOKEN.to_owned()) }),
        client
            .get(format!("{}/query", server.uri()))
            .bearer_token(TOKEN)
            .token_in_query("access_token"),
    ];
    for request in requests {
        texts.push(format!("{request:?}"));
        let mut stream = request.connect().unwrap();
        texts.push(format!("{stream:?}"));
        while let Some(item) = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap()
        {
            let error = item.unwrap_err();
            texts.push(format!("{error}"));
            texts.push(format!("{error:?}"));
            let mut source = std::error::Error::source(&error);
            while let Some(inner) = source {
                texts.push(inner.to_string());
                source = inner.source();
            }
        }
        texts.push(format!("{:?}", *stream.state().borrow()));
    }

    // The token really was sent, and the errors really happened.
    let sent = server.received_requests().await.unwrap();
    assert!(
        sent.iter()
            .any(|r| r.headers.get("authorization").is_some())
    );
    assert!(
        sent.iter()
            .any(|r| r.url.query().is_some_and(|q| q.contains(TOKEN)))
    );
    assert!(texts.iter().any(|t| t.contains("401")));
    assert!(texts.iter().any(|t| t.contains("404")));

    let log = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("connecting"), "the log was captured:\n{log}");
    assert!(
        log.contains("stream failed"),
        "the log was captured:\n{log}"
    );
    assert!(log.contains("hyper"), "dependencies log at TRACE too");
    for (i, line) in log.lines().enumerate() {
        assert!(
            !line.contains(TOKEN),
            "log line {i} leaks the token: {line}"
        );
    }
    for text in &texts {
        assert!(!text.contains(TOKEN), "leaks the token: {text}");
    }
}
