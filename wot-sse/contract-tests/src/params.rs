//! The settings of `POST /` and how they map onto a `wot-sse` request.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use url::Url;
use wot_sse::{EventStream, Method, ReconnectPolicy, SseClient};

/// The body of `POST /`. Unknown fields are ignored; `null` counts as absent.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    /// Harnesses send it, but the service needs it for nothing besides logs.
    #[serde(default)]
    tag: String,
    stream_url: String,
    callback_url: String,
    initial_delay_ms: Option<u64>,
    read_timeout_ms: Option<u64>,
    last_event_id: Option<String>,
    method: Option<String>,
    body: Option<String>,
    headers: Option<BTreeMap<String, String>>,
}

/// Validated settings for one client.
pub(crate) struct CreateParams {
    /// The harness's name for the client, for logs.
    pub(crate) tag: String,
    pub(crate) callback_url: Url,
    body: Body,
    method: Method,
}

impl CreateParams {
    /// Parses and checks what `wot-sse` does not check itself.
    pub(crate) fn parse(json: &[u8]) -> Result<Self, String> {
        let body: Body = serde_json::from_slice(json)
            .map_err(|error| format!("invalid client settings: {error}"))?;
        let callback_url = Url::parse(&body.callback_url)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .ok_or("callbackUrl is not an http or https URL")?;
        let method = match &body.method {
            None => Method::GET,
            Some(method) => Method::from_bytes(method.as_bytes())
                .map_err(|_| format!("method {method:?} is not an HTTP method"))?,
        };
        if body.read_timeout_ms == Some(0) {
            return Err("readTimeoutMs must be at least 1".to_owned());
        }
        Ok(Self {
            tag: body.tag.clone(),
            callback_url,
            body,
            method,
        })
    }

    /// Creates the stream (it connects when the worker first polls it).
    ///
    /// The client never gives up reconnecting: the harness decides when a client is done.
    /// Everything not set comes from `wot-sse`'s defaults.
    pub(crate) fn connect(&self, sse: &SseClient) -> Result<EventStream, String> {
        let body = &self.body;
        let mut policy = ReconnectPolicy::new().max_attempts(None);
        if let Some(ms) = body.initial_delay_ms {
            let initial = Duration::from_millis(ms);
            // The harness asked for this delay: no jitter shortens it, and the default cap
            // does not either. It also controls the server, so the server's `retry:` is taken
            // as sent (no floor) and every connection that opened starts the backoff again.
            policy = policy
                .initial_delay(initial)
                .jitter(0.0)
                .max_delay(initial.max(Duration::from_secs(30)))
                .min_server_retry(Duration::ZERO)
                .stable_after(Duration::ZERO);
        }
        let mut request = sse
            .request(self.method.clone(), &body.stream_url)
            .reconnect(policy);
        if let Some(ms) = body.read_timeout_ms {
            request = request.idle_timeout(Duration::from_millis(ms));
        }
        if let Some(id) = &body.last_event_id {
            request = request.last_event_id(id.as_str());
        }
        if let Some(payload) = &body.body {
            request = request.body(payload.clone());
        }
        for (name, value) in body.headers.iter().flatten() {
            request = request.header(name.as_str(), value.as_str());
        }
        request.connect().map_err(|error| error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<CreateParams, String> {
        CreateParams::parse(json.as_bytes())
    }

    const MINIMAL: &str =
        r#"{"tag":"t","streamUrl":"http://127.0.0.1:1/s","callbackUrl":"http://127.0.0.1:1/c"}"#;

    #[test]
    fn minimal_settings_are_accepted() {
        let params = parse(MINIMAL).unwrap();
        assert_eq!(params.tag, "t");
        assert_eq!(params.method, Method::GET);
        assert_eq!(params.callback_url.as_str(), "http://127.0.0.1:1/c");
        assert!(params.connect(&SseClient::new()).is_ok());
        let untagged = r#"{"streamUrl":"http://h/s","callbackUrl":"http://h/c"}"#;
        assert_eq!(parse(untagged).unwrap().tag, "");
    }

    #[test]
    fn nulls_and_unknown_fields_are_ignored() {
        let json = r#"{"tag":"t","streamUrl":"http://h/s","callbackUrl":"http://h/c",
            "initialDelayMs":null,"headers":null,"method":null,"extra":[1]}"#;
        assert!(parse(json).unwrap().connect(&SseClient::new()).is_ok());
    }

    #[test]
    fn bad_settings_are_rejected_with_the_reason() {
        let cases = [
            ("{", "invalid client settings"),
            (
                r#"{"tag":1,"streamUrl":"http://h/s","callbackUrl":"http://h/c"}"#,
                "invalid type",
            ),
            (r#"{"tag":"t","callbackUrl":"http://h/c"}"#, "`streamUrl`"),
            (
                r#"{"tag":"t","streamUrl":"http://h/s","callbackUrl":"nope"}"#,
                "callbackUrl",
            ),
            (
                r#"{"tag":"t","streamUrl":"http://h/s","callbackUrl":"http://h/c","readTimeoutMs":0}"#,
                "readTimeoutMs",
            ),
            (
                r#"{"tag":"t","streamUrl":"http://h/s","callbackUrl":"http://h/c","initialDelayMs":-1}"#,
                "invalid client settings",
            ),
            (
                r#"{"tag":"t","streamUrl":"http://h/s","callbackUrl":"http://h/c","method":"GE T"}"#,
                "not an HTTP method",
            ),
        ];
        for (json, reason) in cases {
            let error = parse(json)
                .err()
                .unwrap_or_else(|| panic!("{json} accepted"));
            assert!(error.contains(reason), "{json}: {error}");
        }
    }

    #[test]
    fn settings_the_client_rejects_are_reported() {
        let cases = [
            (r#""streamUrl":"ftp://h/s""#, "not http or https"),
            (r#""streamUrl":"::""#, "invalid URL"),
            (
                r#""streamUrl":"http://h/s","headers":{"bad name":"v"}"#,
                "invalid header name",
            ),
            (
                r#""streamUrl":"http://h/s","lastEventId":"a\u0000b""#,
                "U+0000",
            ),
        ];
        for (fields, reason) in cases {
            let json = format!(r#"{{"tag":"t","callbackUrl":"http://h/c",{fields}}}"#);
            let error = parse(&json)
                .and_then(|params| params.connect(&SseClient::new()).map(drop))
                .err()
                .unwrap_or_else(|| panic!("{json} accepted"));
            assert!(error.contains(reason), "{json}: {error}");
        }
    }
}
