//! The contract-test service for `wot-sse`.
//!
//! An external SSE client test harness drives our client through this HTTP service: it asks
//! for the service's capabilities, creates clients pointed at its own stream server, sends them
//! commands, and receives everything the clients yield as callbacks. The protocol:
//!
//! | request | answer |
//! |---|---|
//! | `GET /` | 200, `{"name": "wot-sse", "capabilities": [...]}` |
//! | `DELETE /` | 204; the service stops (all clients are closed) |
//! | `POST /` with the client's settings | 201, `Location: /clients/N`; 400 for bad settings |
//! | `POST /clients/N` with `{"command": "restart"}` | 204; unknown command 400, unknown client 404 |
//! | `DELETE /clients/N` | 204, the client is closed; unknown client 404 |
//!
//! Each client POSTs what it yields, in order, to `callbackUrl/1`, `callbackUrl/2`, ...:
//! `{"kind": "event", "event": {"type", "data", "id"}}`, `{"kind": "comment", "comment"}` or
//! `{"kind": "error", "error"}`. See `README.md` next to `Cargo.toml` for the details.
//!
//! The binary `sse-contract-service` is a thin shell around [`run`].

mod params;
mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use wot_sse::{SseClient, StreamHandle};

use crate::params::CreateParams;
use crate::worker::{Callbacks, Worker};

/// What the service reports as `name` on `GET /`.
pub const NAME: &str = "wot-sse";

/// The capabilities the service claims on `GET /`: every optional feature of the protocol,
/// each backed by `wot-sse` and exercised by this package's tests.
pub const CAPABILITIES: [&str; 9] = [
    "comments",
    "headers",
    "last-event-id",
    "read-timeout",
    "restart",
    "bom",
    "post",
    "report",
    "server-directed-shutdown-request",
];

/// Serves the protocol on `listener` until a harness sends `DELETE /`, then closes every
/// client and returns.
///
/// # Errors
///
/// The HTTP clients cannot be built (no TLS backend), or accepting connections fails.
pub async fn run(listener: TcpListener) -> std::io::Result<()> {
    let service = Arc::new(Service::new()?);
    let app = router(service.clone());
    let stopping = service.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            stopping.stop.notified().await;
            stopping.close_all();
        })
        .await?;
    // A client created while the last requests were finishing must not outlive the service.
    service.close_all();
    Ok(())
}

/// The shared state of the service.
struct Service {
    sse: SseClient,
    /// Sends the callbacks; redirects are not followed.
    callbacks: reqwest::Client,
    last_id: AtomicU64,
    /// Dropping an entry aborts its client task.
    clients: Mutex<HashMap<u64, Client>>,
    stop: Notify,
}

struct Client {
    handle: StreamHandle,
    _worker: Worker,
}

impl Service {
    fn new() -> std::io::Result<Self> {
        let sse = SseClient::builder()
            .build()
            .map_err(std::io::Error::other)?;
        let callbacks = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Self {
            sse,
            callbacks,
            last_id: AtomicU64::new(0),
            clients: Mutex::new(HashMap::new()),
            stop: Notify::new(),
        })
    }

    fn clients(&self) -> MutexGuard<'_, HashMap<u64, Client>> {
        // The map stays consistent even if a holder panicked: every change is one call.
        self.clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn close_all(&self) {
        let closed = std::mem::take(&mut *self.clients());
        if !closed.is_empty() {
            tracing::info!(clients = closed.len(), "closing all clients");
        }
    }
}

fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/", get(capabilities).post(create).delete(stop))
        .route("/clients/{id}", post(command).delete(close))
        .with_state(service)
}

async fn capabilities() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "name": NAME, "capabilities": CAPABILITIES }))
}

async fn stop(State(service): State<Arc<Service>>) -> StatusCode {
    tracing::info!("stop requested");
    service.stop.notify_one();
    StatusCode::NO_CONTENT
}

async fn create(State(service): State<Arc<Service>>, body: Bytes) -> Response {
    let params = match CreateParams::parse(&body) {
        Ok(params) => params,
        Err(message) => return bad_request(message),
    };
    let stream = match params.connect(&service.sse) {
        Ok(stream) => stream,
        Err(message) => return bad_request(message),
    };
    let id = service.last_id.fetch_add(1, Ordering::Relaxed) + 1;
    let callbacks = Callbacks::new(service.callbacks.clone(), params.callback_url);
    tracing::info!(client = id, tag = %params.tag, "client created");
    let client = Client {
        handle: stream.handle(),
        _worker: Worker::spawn(id, params.tag, stream, callbacks),
    };
    service.clients().insert(id, client);
    (StatusCode::CREATED, [(LOCATION, format!("/clients/{id}"))]).into_response()
}

#[derive(Deserialize)]
struct Command {
    command: String,
}

async fn command(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(handle) = client_id(&id).and_then(|id| {
        let clients = service.clients();
        clients.get(&id).map(|client| client.handle.clone())
    }) else {
        return unknown_client(&id);
    };
    let command = match serde_json::from_slice::<Command>(&body) {
        Ok(command) => command,
        Err(error) => return bad_request(format!("invalid command: {error}")),
    };
    match command.command.as_str() {
        "restart" => {
            tracing::info!(client = %id, "restart requested");
            handle.reconnect_now();
            StatusCode::NO_CONTENT.into_response()
        }
        other => bad_request(format!("unknown command {other:?}")),
    }
}

async fn close(State(service): State<Arc<Service>>, Path(id): Path<String>) -> Response {
    let removed = client_id(&id).and_then(|id| service.clients().remove(&id));
    match removed {
        Some(client) => {
            client.handle.close();
            drop(client);
            tracing::info!(client = %id, "client closed");
            StatusCode::NO_CONTENT.into_response()
        }
        None => unknown_client(&id),
    }
}

fn client_id(text: &str) -> Option<u64> {
    text.parse().ok()
}

fn unknown_client(id: &str) -> Response {
    (StatusCode::NOT_FOUND, format!("no client {id:?}\n")).into_response()
}

fn bad_request(message: String) -> Response {
    tracing::info!(%message, "bad request");
    (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response()
}
