//! One task per client: it polls the stream and reports each item as a callback.

use std::error::Error as _;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use url::Url;
use wot_sse::{Error, EventStream, Message};

/// Where a client's callbacks go: `base/1`, `base/2`, ...
pub(crate) struct Callbacks {
    http: reqwest::Client,
    base: String,
    sent: u64,
}

impl Callbacks {
    pub(crate) fn new(http: reqwest::Client, base: Url) -> Self {
        let base = base.as_str().trim_end_matches('/').to_owned();
        Self {
            http,
            base,
            sent: 0,
        }
    }

    /// Posts `payload` to the next callback URL and waits for the answer, so callbacks
    /// arrive in order. A failed callback is logged; the next one is still sent.
    async fn send(&mut self, payload: &Value) {
        self.sent += 1;
        let url = format!("{}/{}", self.base, self.sent);
        match self.http.post(&url).json(payload).send().await {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => {
                tracing::warn!(callback = self.sent, status = %response.status(), "callback refused");
            }
            Err(error) => {
                tracing::warn!(callback = self.sent, error = %error.without_url(), "callback failed");
            }
        }
    }
}

/// The task of one client; dropping this aborts it, which drops the stream and with it the
/// connection.
pub(crate) struct Worker(JoinHandle<()>);

impl Worker {
    pub(crate) fn spawn(id: u64, tag: String, stream: EventStream, callbacks: Callbacks) -> Self {
        let span = tracing::info_span!("client", id, %tag);
        Self(tokio::spawn(tracing::Instrument::instrument(
            forward(stream, callbacks),
            span,
        )))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn forward(mut stream: EventStream, mut callbacks: Callbacks) {
    while let Some(item) = stream.messages().next().await {
        callbacks.send(&payload(item)).await;
    }
    tracing::info!(state = ?*stream.state().borrow(), "stream ended");
}

/// The callback body for one item of the stream.
fn payload(item: Result<Message, Error>) -> Value {
    match item {
        Ok(Message::Event(event)) => json!({
            "kind": "event",
            "event": { "type": event.event_type(), "data": event.data(), "id": event.id() },
        }),
        Ok(Message::Comment(comment)) => json!({ "kind": "comment", "comment": comment }),
        // `Message` is non-exhaustive: report a kind this service does not know as such.
        Ok(other) => json!({ "kind": "unknown", "message": format!("{other:?}") }),
        Err(error) => json!({ "kind": "error", "error": describe(&error) }),
    }
}

/// The error and its causes, e.g. `connecting failed (http://…/): … : connection refused`.
fn describe(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use wot_sse::Event;

    #[test]
    fn events_and_comments_become_callback_bodies() {
        let event = Message::Event(Event::new("", "a\nb", "7"));
        assert_eq!(
            payload(Ok(event)),
            json!({"kind": "event", "event": {"type": "message", "data": "a\nb", "id": "7"}})
        );
        let comment = Message::Comment(" hi".to_owned());
        assert_eq!(
            payload(Ok(comment)),
            json!({"kind": "comment", "comment": " hi"})
        );
    }
}
