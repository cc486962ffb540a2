//! Real parts for the protocol tests: the service on a free port, a stream server the
//! clients connect to, and a receiver for their callbacks. All on 127.0.0.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use futures_util::{StreamExt, stream};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;

/// How long a test waits for something that must happen.
const PATIENCE: Duration = Duration::from_secs(10);

async fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

fn serve(listener: TcpListener, app: Router) -> JoinHandle<()> {
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    })
}

async fn within<T>(what: &str, future: impl Future<Output = Option<T>>) -> T {
    match tokio::time::timeout(PATIENCE, future).await {
        Ok(Some(value)) => value,
        Ok(None) => panic!("{what}: channel closed"),
        Err(_) => panic!("{what}: nothing within {PATIENCE:?}"),
    }
}

/// The service under test, served in-process.
pub(crate) struct Service {
    pub(crate) url: String,
    pub(crate) http: reqwest::Client,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Service {
    pub(crate) async fn start() -> Self {
        let (listener, url) = listen().await;
        let task = tokio::spawn(sse_contract_service::run(listener));
        Self {
            url,
            http: reqwest::Client::new(),
            task: Some(task),
        }
    }

    /// `POST /` with these settings.
    pub(crate) async fn create(&self, settings: &Value) -> reqwest::Response {
        self.http
            .post(&self.url)
            .json(settings)
            .send()
            .await
            .unwrap()
    }

    /// Creates a client and returns its absolute URL.
    pub(crate) async fn create_client(&self, settings: &Value) -> String {
        let response = self.create(settings).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let location = response.headers()[header::LOCATION].to_str().unwrap();
        assert!(location.starts_with("/clients/"), "{location}");
        format!("{}{location}", self.url)
    }

    /// `POST <client>` with this body; returns the status.
    pub(crate) async fn command(&self, client: &str, body: &str) -> StatusCode {
        let response = self.http.post(client).body(body.to_owned()).send().await;
        response.unwrap().status()
    }

    pub(crate) async fn delete(&self, url: &str) -> StatusCode {
        self.http.delete(url).send().await.unwrap().status()
    }

    /// Waits for the service to stop by itself and returns what `run` returned.
    pub(crate) async fn stopped(&mut self) -> std::io::Result<()> {
        let task = self.task.take().unwrap();
        tokio::time::timeout(PATIENCE, task)
            .await
            .expect("the service did not stop")
            .unwrap()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Receives the callbacks the clients send.
pub(crate) struct Callbacks {
    /// Give this as `callbackUrl`.
    pub(crate) url: String,
    received: UnboundedReceiver<(String, u64, Value)>,
    server: JoinHandle<()>,
}

async fn receive_callback(
    State(sender): State<UnboundedSender<(String, u64, Value)>>,
    Path((name, counter)): Path<(String, u64)>,
    body: Bytes,
) -> StatusCode {
    let Ok(value) = serde_json::from_slice(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let _ = sender.send((name, counter, value));
    StatusCode::ACCEPTED
}

impl Callbacks {
    pub(crate) async fn start() -> Self {
        let (sender, received) = unbounded_channel();
        let app = Router::new()
            .route("/callbacks/{name}/{counter}", post(receive_callback))
            .with_state(sender);
        let (listener, url) = listen().await;
        Self {
            url: format!("{url}/callbacks"),
            received,
            server: serve(listener, app),
        }
    }

    /// The next callback: `(callback URL name, counter, body)`. Callbacks to `url/<name>`
    /// let a test tell clients apart.
    pub(crate) async fn next_from_any(&mut self) -> (String, u64, Value) {
        within("callback", self.received.recv()).await
    }

    /// The next callback, which must be for a client whose callbackUrl is `url/main`.
    pub(crate) async fn next(&mut self) -> (u64, Value) {
        let (name, counter, body) = self.next_from_any().await;
        assert_eq!(name, "main", "{body}");
        (counter, body)
    }

    /// No callback arrives for `wait`.
    pub(crate) async fn expect_none(&mut self, wait: Duration) {
        if let Ok(got) = tokio::time::timeout(wait, self.received.recv()).await {
            panic!("unexpected callback {got:?}");
        }
    }

    /// The callbackUrl for a client called `name`.
    pub(crate) fn url_for(&self, name: &str) -> String {
        format!("{}/{name}", self.url)
    }
}

impl Drop for Callbacks {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// How the stream server answers one request.
pub(crate) enum Reply {
    /// 200 `text/event-stream` with these bytes; then the body stays open.
    Open(&'static str),
    /// 200 `text/event-stream` with these bytes; then the body ends.
    Ended(&'static str),
    /// 200 `text/event-stream` with these bytes; then the connection breaks mid-body when the
    /// test calls [`StreamServer::break_connection`].
    Broken(&'static str),
    /// This status, content type (if any) and body.
    Other(u16, Option<&'static str>, &'static str),
}

/// A request the stream server received.
#[derive(Debug)]
pub(crate) struct Recorded {
    pub(crate) method: Method,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Recorded {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }
}

type Responder = Arc<dyn Fn(usize) -> Reply + Send + Sync>;

#[derive(Clone)]
struct StreamState {
    responder: Responder,
    connections: Arc<AtomicUsize>,
    requests: UnboundedSender<Recorded>,
    closed: UnboundedSender<usize>,
    breaker: Arc<Notify>,
}

enum Then {
    StayOpen,
    End,
    Break,
}

/// Tells the test when a response body is dropped, i.e. the connection is gone.
struct CloseGuard(usize, UnboundedSender<usize>);

impl Drop for CloseGuard {
    fn drop(&mut self) {
        let _ = self.1.send(self.0);
    }
}

async fn answer(
    State(state): State<StreamState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let connection = state.connections.fetch_add(1, Ordering::SeqCst);
    let _ = state.requests.send(Recorded {
        method,
        headers,
        body,
    });
    let (bytes, then) = match (state.responder)(connection) {
        Reply::Open(bytes) => (bytes, Then::StayOpen),
        Reply::Ended(bytes) => (bytes, Then::End),
        Reply::Broken(bytes) => (bytes, Then::Break),
        Reply::Other(status, content_type, bytes) => {
            let mut response = Response::builder().status(status);
            if let Some(content_type) = content_type {
                response = response.header(header::CONTENT_TYPE, content_type);
            }
            return response.body(Body::from(bytes)).unwrap();
        }
    };
    let guard = CloseGuard(connection, state.closed.clone());
    let first = stream::once(async move { Ok(Bytes::from_static(bytes.as_bytes())) });
    let rest = match then {
        Then::StayOpen => stream::pending().boxed(),
        Then::End => stream::empty().boxed(),
        // An error from the body makes the server drop the connection without finishing
        // the chunked encoding.
        Then::Break => {
            let breaker = state.breaker.clone();
            stream::once(async move {
                breaker.notified().await;
                Err(std::io::Error::other("broken on purpose"))
            })
            .boxed()
        }
    };
    let body = first.chain(rest).map(move |chunk| {
        let _ = &guard;
        chunk
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(body))
        .unwrap()
}

/// An SSE server whose answer to the n-th request (from 0) is `responder(n)`.
pub(crate) struct StreamServer {
    pub(crate) url: String,
    requests: UnboundedReceiver<Recorded>,
    closed: UnboundedReceiver<usize>,
    breaker: Arc<Notify>,
    server: JoinHandle<()>,
}

impl StreamServer {
    pub(crate) async fn start(responder: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Self {
        let (requests_in, requests) = unbounded_channel();
        let (closed_in, closed) = unbounded_channel();
        let breaker = Arc::new(Notify::new());
        let state = StreamState {
            responder: Arc::new(responder),
            connections: Arc::default(),
            requests: requests_in,
            closed: closed_in,
            breaker: breaker.clone(),
        };
        let app = Router::new().fallback(answer).with_state(state);
        let (listener, url) = listen().await;
        Self {
            url: format!("{url}/stream"),
            requests,
            closed,
            breaker,
            server: serve(listener, app),
        }
    }

    /// The same answer to every request.
    pub(crate) async fn always(reply: fn() -> Reply) -> Self {
        Self::start(move |_| reply()).await
    }

    pub(crate) async fn next_request(&mut self) -> Recorded {
        within("request to the stream server", self.requests.recv()).await
    }

    /// No further request arrives for `wait`.
    pub(crate) async fn expect_no_request(&mut self, wait: Duration) {
        if let Ok(got) = tokio::time::timeout(wait, self.requests.recv()).await {
            panic!("unexpected request {got:?}");
        }
    }

    /// Breaks the (next) [`Reply::Broken`] connection.
    pub(crate) fn break_connection(&self) {
        self.breaker.notify_one();
    }

    /// Waits until the body of a streaming response is dropped; returns its request number.
    pub(crate) async fn next_closed(&mut self) -> usize {
        within("a stream connection to close", self.closed.recv()).await
    }
}

impl Drop for StreamServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}
