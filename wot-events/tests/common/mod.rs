//! A Thing server for the tests, on 127.0.0.1, following the WoT Profile HTTP bindings:
//! Basic Profile (GET/PUT/POST JSON) and SSE Profile (`event` = affordance name, `data` =
//! JSON, `id` = resume token, replay after `Last-Event-ID`).
//!
//! Things: `a` offers Thing-level `subscribeallevents` and `observeallproperties` SSE forms;
//! `b` offers only per-affordance forms; `c` is like `b` behind a bearer token. Every TD
//! uses relative hrefs, so the URL it was fetched from is the base.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

pub const TOKEN: &str = "s3cret-t0ken";

#[derive(Clone, Debug)]
pub struct Ev {
    pub id: u64,
    /// `a-events`, `b-events`, `c-events`, `a-props`, `b-props`.
    pub channel: String,
    pub name: String,
    pub data: String,
}

#[derive(Default)]
pub struct Sim {
    log: Mutex<Vec<Ev>>,
    notify: Notify,
    /// Connections opened per path.
    conns: Mutex<HashMap<String, usize>>,
    /// `Last-Event-ID` received per connection, per path.
    resume_ids: Mutex<HashMap<String, Vec<Option<String>>>>,
    active: Mutex<Option<watch::Sender<usize>>>,
    /// On the first connection of any stream: after the event with this id, send half an
    /// event and close.
    pub drop_after: Mutex<Option<u64>>,
    pub reads: AtomicUsize,
    pub flaky_reads: AtomicUsize,
    pub props: Mutex<HashMap<String, Value>>,
}

pub struct Server {
    pub sim: Arc<Sim>,
    pub addr: SocketAddr,
    pub active: watch::Receiver<usize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub async fn start() -> Server {
        let sim = Arc::new(Sim::default());
        let (tx, rx) = watch::channel(0usize);
        *sim.active.lock().unwrap() = Some(tx);
        sim.props.lock().unwrap().insert("temp".into(), json!(21.5));
        sim.props
            .lock()
            .unwrap()
            .insert("humidity".into(), json!(40));
        let app = Router::new()
            .route("/things/{t}/td", get(td))
            .route("/things/{t}/events", get(all_events))
            .route("/things/{t}/events/{name}", get(one_event))
            .route("/things/{t}/properties", get(all_props))
            .route("/things/{t}/properties/{name}/observe", get(observe_prop))
            .route(
                "/things/{t}/properties/{name}",
                get(read_prop).put(write_prop),
            )
            .route("/things/{t}/actions/{name}", axum::routing::post(invoke))
            .route("/directory/things", get(directory))
            .route("/notjson", get(|| async { "this is not JSON" }))
            .route("/tm", get(|| async { axum::Json(thing_model()) }))
            .route("/invalid", get(|| async { axum::Json(invalid_td()) }))
            .with_state(sim.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Server {
            sim,
            addr,
            active: rx,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn push(&self, channel: &str, name: &str, data: &str) -> u64 {
        let mut log = self.sim.log.lock().unwrap();
        let id = log.len() as u64 + 1;
        log.push(Ev {
            id,
            channel: channel.into(),
            name: name.into(),
            data: data.into(),
        });
        drop(log);
        self.sim.notify.notify_waiters();
        id
    }

    pub fn connections(&self, path: &str) -> usize {
        self.sim
            .conns
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    pub fn resume_ids(&self, path: &str) -> Vec<Option<String>> {
        self.sim
            .resume_ids
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .unwrap_or_default()
    }

    /// Waits (at most 5 s) until no stream connection is open.
    pub async fn wait_all_closed(&self) {
        let mut rx = self.active.clone();
        tokio::time::timeout(std::time::Duration::from_secs(5), rx.wait_for(|n| *n == 0))
            .await
            .expect("connections close")
            .unwrap();
    }
}

pub fn td_value(thing: &str) -> Value {
    let shared = thing == "a";
    let mut td = json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "id": format!("urn:test:{thing}"),
        "title": format!("Thing {}", thing.to_uppercase()),
        "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}, "bearer_sc": {"scheme": "bearer"}},
        "security": if thing == "c" { "bearer_sc" } else { "nosec_sc" },
        "properties": {
            "temp": {
                "type": "number", "minimum": -40, "maximum": 125, "unit": "°C", "observable": true,
                "forms": [
                    {"href": "properties/temp", "op": ["readproperty", "writeproperty"]},
                    {"href": "properties/temp/observe", "op": "observeproperty", "subprotocol": "sse"}
                ]
            },
            "humidity": {
                "type": "integer", "minimum": 0, "maximum": 100,
                "forms": [{"href": "properties/humidity"}]
            },
            "flaky": {"type": "integer", "readOnly": true, "forms": [{"href": "properties/flaky"}]}
        },
        "actions": {
            "echo": {"input": {"type": "object"}, "output": {"type": "object"},
                     "forms": [{"href": "actions/echo"}]},
            "fail": {"forms": [{"href": "actions/fail"}]}
        },
        "events": {
            "overheat": {
                "data": {"type": "object", "required": ["t"], "properties": {"t": {"type": "number", "maximum": 200}}},
                "forms": [
                    {"href": "events/overheat", "subprotocol": "sse", "op": "subscribeevent"},
                    {"href": "events/overheat", "contentType": "application/cbor", "subprotocol": "longpoll", "op": "subscribeevent"}
                ]
            },
            "door": {"data": {"type": "string"}, "forms": [{"href": "events/door", "contentType": "text/event-stream"}]}
        }
    });
    if shared {
        td["forms"] = json!([
            {"href": "events", "op": "subscribeallevents", "subprotocol": "sse"},
            {"href": "properties", "op": "observeallproperties", "subprotocol": "sse"}
        ]);
    }
    td
}

fn thing_model() -> Value {
    json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "@type": "tm:ThingModel",
        "title": "Lamp model",
        "properties": {"on": {"type": "boolean"}}
    })
}

fn invalid_td() -> Value {
    json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "title": "Broken",
        "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
        "security": "undefined_sc",
        "properties": {"x": {"type": "number", "forms": [{"href": "x"}]}}
    })
}

async fn td(Path(t): Path<String>) -> Response {
    if !["a", "b", "c"].contains(&t.as_str()) {
        return StatusCode::NOT_FOUND.into_response();
    }
    axum::Json(td_value(&t)).into_response()
}

async fn directory(State(_): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut list = Vec::new();
    for t in ["a", "b"] {
        let mut td = td_value(t);
        td["base"] = json!(format!("http://{host}/things/{t}/"));
        list.push(td);
    }
    list.push(invalid_td());
    axum::Json(list).into_response()
}

fn authorized(t: &str, headers: &HeaderMap) -> bool {
    t != "c"
        || headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            == Some(&format!("Bearer {TOKEN}"))
}

struct ActiveGuard(Arc<Sim>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        if let Some(tx) = &*self.0.active.lock().unwrap() {
            tx.send_modify(|n| *n -= 1);
        }
    }
}

/// An SSE response with the events of `channel` (and `name`, if given) after the
/// `Last-Event-ID`, then new ones as they are pushed.
fn sse(
    sim: Arc<Sim>,
    path: String,
    headers: &HeaderMap,
    channel: String,
    name: Option<String>,
) -> Response {
    let last: Option<String> = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let first_connection = {
        let mut conns = sim.conns.lock().unwrap();
        let n = conns.entry(path.clone()).or_default();
        *n += 1;
        *n == 1
    };
    sim.resume_ids
        .lock()
        .unwrap()
        .entry(path)
        .or_default()
        .push(last.clone());
    if let Some(tx) = &*sim.active.lock().unwrap() {
        tx.send_modify(|n| *n += 1);
    }
    let guard = ActiveGuard(sim.clone());
    let mut next = last.and_then(|l| l.parse::<u64>().ok()).unwrap_or(0);
    let drop_after = if first_connection {
        *sim.drop_after.lock().unwrap()
    } else {
        None
    };
    let (mut tx, rx) = futures::channel::mpsc::channel::<Bytes>(16);
    let sim2 = sim.clone();
    tokio::spawn(async move {
        use futures::SinkExt;
        loop {
            let notified = sim2.notify.notified();
            let pending: Vec<Ev> = sim2
                .log
                .lock()
                .unwrap()
                .iter()
                .filter(|e| {
                    e.id > next
                        && e.channel == channel
                        && name.as_ref().is_none_or(|n| *n == e.name)
                })
                .cloned()
                .collect();
            for e in pending {
                next = e.id;
                let text = format!("id: {}\nevent: {}\ndata: {}\n\n", e.id, e.name, e.data);
                if tx.send(Bytes::from(text)).await.is_err() {
                    return;
                }
                if drop_after == Some(e.id) {
                    // Half of the next event, then the connection ends.
                    let _ = tx
                        .send(Bytes::from(format!(
                            "id: {}\nevent: {}\ndata: {{\"t\": ",
                            e.id + 1,
                            e.name
                        )))
                        .await;
                    return;
                }
            }
            notified.await;
        }
    });
    let body = rx.map(move |b| {
        let _keep = &guard;
        Ok::<_, Infallible>(b)
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(body))
        .unwrap()
}

async fn all_events(
    State(sim): State<Arc<Sim>>,
    Path(t): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/things/{t}/events");
    sse(sim, path, &headers, format!("{t}-events"), None)
}

async fn one_event(
    State(sim): State<Arc<Sim>>,
    Path((t, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&t, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let path = format!("/things/{t}/events/{name}");
    sse(sim, path, &headers, format!("{t}-events"), Some(name))
}

async fn all_props(
    State(sim): State<Arc<Sim>>,
    Path(t): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/things/{t}/properties");
    sse(sim, path, &headers, format!("{t}-props"), None)
}

async fn observe_prop(
    State(sim): State<Arc<Sim>>,
    Path((t, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/things/{t}/properties/{name}/observe");
    sse(sim, path, &headers, format!("{t}-props"), Some(name))
}

async fn read_prop(
    State(sim): State<Arc<Sim>>,
    Path((_t, name)): Path<(String, String)>,
) -> Response {
    if name == "humidity" {
        // A value that changes on the 3rd and the 6th read: 40 40 41 41 41 42 42 ...
        let n = sim.reads.fetch_add(1, Ordering::SeqCst);
        let v = match n {
            0 | 1 => 40,
            2..=4 => 41,
            _ => 42,
        };
        return axum::Json(json!(v)).into_response();
    }
    if name == "flaky" {
        // Two 503s with problem details, then 7, then 404 (a terminal error).
        let n = sim.flaky_reads.fetch_add(1, Ordering::SeqCst);
        return match n {
            0 | 1 => Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .header(header::CONTENT_TYPE, "application/problem+json")
                .body(Body::from(
                    json!({"title": "Warming up", "status": 503}).to_string(),
                ))
                .unwrap(),
            2 => axum::Json(json!(7)).into_response(),
            _ => StatusCode::NOT_FOUND.into_response(),
        };
    }
    match sim.props.lock().unwrap().get(&name) {
        Some(v) => axum::Json(v.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn write_prop(
    State(sim): State<Arc<Sim>>,
    Path((_t, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) => {
            sim.props.lock().unwrap().insert(name, v);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

async fn invoke(Path((_t, name)): Path<(String, String)>, body: Bytes) -> Response {
    match name.as_str() {
        "echo" => {
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            axum::Json(json!({"echo": v})).into_response()
        }
        _ => Response::builder()
            .status(StatusCode::CONFLICT)
            .header(header::CONTENT_TYPE, "application/problem+json")
            .body(Body::from(
                json!({"type": "https://example.com/probs/busy", "title": "Busy",
                       "status": 409, "detail": "the device is calibrating"})
                .to_string(),
            ))
            .unwrap(),
    }
}
