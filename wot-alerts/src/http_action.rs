//! The HTTP actions: `webhook` and `invoke_action` (the `http-actions` feature).

use std::collections::HashMap;
use std::time::Duration;

use crate::engine::Notification;
use crate::error::{Error, ErrorKind};
use crate::rule::{ActionSpec, WebhookHeaders};
use crate::webhook::WebhookPayload;

/// Most redirects the default client follows for one action request.
const MAX_REDIRECTS: usize = 10;
/// The header that carries the notification id.
const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// How long the default client waits for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The redirect policy of the default action client: follow at most 10 redirects, and only
/// within the origin (scheme, host and port) of the first request. A redirect to another
/// origin fails the request (fail closed): webhook URLs and headers carry credentials, and
/// they must not reach a server they were not configured for.
///
/// Use it when you pass your own client to
/// [`AlertManagerBuilder::http_client`](crate::AlertManagerBuilder::http_client):
///
/// ```
/// let client = reqwest::Client::builder()
///     .redirect(wot_alerts::same_origin_redirects())
///     .build()?;
/// # Ok::<(), reqwest::Error>(())
/// ```
pub fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().map(reqwest::Url::origin);
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else if first.is_some_and(|o| o != attempt.url().origin()) {
            let to = wot_sse::redact_url(attempt.url());
            attempt.error(format!(
                "redirect to another origin ({to}) refused: credentials stay with their origin"
            ))
        } else {
            attempt.follow()
        }
    })
}

/// The client used when none is given: same-origin redirects, a 5 s connect timeout.
pub(crate) fn default_client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .redirect(same_origin_redirects())
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .map_err(|e| {
            Error::new(ErrorKind::HttpClient, "cannot build the HTTP client").with_source(e)
        })
}

/// One `webhook` or `invoke_action` action, ready to send.
pub(crate) struct HttpAction {
    client: reqwest::Client,
    url: reqwest::Url,
    /// `url` as shown in errors and logs.
    shown: String,
    headers: WebhookHeaders,
    body: Body,
}

enum Body {
    /// The Alertmanager payload, with this `externalURL`.
    Webhook { external_url: String },
    /// The action's input, if any.
    Input(Option<serde_json::Value>),
}

impl HttpAction {
    /// The action `name` defined by `spec` (a webhook or an invoke action, whose form is
    /// looked up in `things`).
    pub(crate) fn new(
        name: &str,
        spec: &ActionSpec,
        client: reqwest::Client,
        things: &HashMap<String, wot_td::Thing>,
    ) -> Result<Self, Error> {
        let (url, headers, body) = match spec {
            ActionSpec::Webhook {
                url,
                headers,
                external_url,
                ..
            } => (
                url.as_url().clone(),
                headers.clone(),
                Body::Webhook {
                    external_url: external_url.clone().unwrap_or_default(),
                },
            ),
            ActionSpec::InvokeAction {
                thing,
                action,
                input,
                ..
            } => {
                let url = crate::td::action_url(things, thing, action).map_err(|reason| {
                    Error::new(
                        ErrorKind::ActionTarget,
                        format!("action `{name}`: {reason}"),
                    )
                })?;
                (url, WebhookHeaders::new(), Body::Input(input.clone()))
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!("action `{name}` does not send HTTP requests"),
                ));
            }
        };
        Ok(HttpAction {
            client,
            shown: wot_sse::redact_url(&url),
            url,
            headers,
            body,
        })
    }

    /// One attempt: POSTs the body and waits for the response head.
    pub(crate) async fn send(&self, n: &Notification, receiver: &str) -> Result<(), Error> {
        let mut request = self.client.post(self.url.clone());
        request = match &self.body {
            Body::Webhook { external_url } => {
                request.json(&WebhookPayload::new(n, receiver, external_url))
            }
            Body::Input(Some(input)) => request.json(input),
            Body::Input(None) => request,
        };
        for (name, value) in self.headers.iter() {
            request = request.header(name, value);
        }
        // The same for every attempt and after a restart: a receiver can drop a repeat.
        request = request.header(IDEMPOTENCY_KEY, n.id.to_string());
        let what = format!("POST {}", self.shown);
        let response = request.send().await.map_err(|e| {
            let kind = if e.is_timeout() {
                ErrorKind::Timeout
            } else {
                ErrorKind::Request
            };
            Error::new(kind, format!("{what} failed"))
                .with_url(self.shown.clone())
                .with_source(e.without_url())
        })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::Status, what)
                .with_url(self.shown.clone())
                .with_status(status))
        }
    }
}
