//! A loopback HTTP server (axum on 127.0.0.1) that streams pre-encoded event-stream bodies as
//! fast as it can, on its own runtime thread so it does not share the client's executor.
//!
//! Routes: `/{workload name}` streams that workload's body in its chunks (64 KiB for the
//! end-to-end cases); `/idle` sends one event (`data: open`) and then nothing, forever, so a
//! client holds an open, idle stream.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::{Router, body::Body, http::header, response::Response, routing::get};
use bytes::Bytes;
use futures::{StreamExt as _, stream};

use crate::Workload;

/// A running server; dropping it shuts its runtime down.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

impl Server {
    /// Starts the server on an ephemeral port of 127.0.0.1 with one route per workload plus
    /// `/idle`.
    ///
    /// # Panics
    /// If the runtime cannot be built or the port cannot be bound (benchmark setup only).
    pub fn start(workloads: &[Workload]) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bench-server")
            .enable_all()
            .build()
            .expect("server runtime");
        let mut router = Router::new().route("/idle", get(idle));
        for workload in workloads {
            let workload = workload.clone();
            router = router.route(
                &format!("/{}", workload.name),
                get(move || std::future::ready(stream_body(&workload))),
            );
        }
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        runtime.spawn(async move { axum::serve(listener, router).await });
        Server {
            addr,
            _runtime: runtime,
        }
    }

    /// The URL of a route, e.g. `url("idle")`.
    pub fn url(&self, route: &str) -> String {
        format!("http://{}/{route}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

fn event_stream(body: Body) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .expect("a valid response")
}

fn stream_body(workload: &Workload) -> Response {
    event_stream(Body::from_stream(stream::iter(
        workload.chunks().map(Ok::<Bytes, Infallible>),
    )))
}

async fn idle() -> Response {
    let open = stream::once(std::future::ready(Ok::<Bytes, Infallible>(
        Bytes::from_static(b"data: open\n\n"),
    )));
    event_stream(Body::from_stream(open.chain(stream::pending())))
}
