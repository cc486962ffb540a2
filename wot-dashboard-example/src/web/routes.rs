//! The HTTP side: the page and its assets, the JSON snapshot, the live stream and the two
//! actions, behind one middleware that adds the security headers to every response.
//!
//! | Route | What |
//! |---|---|
//! | `GET /` | the page (`web/index.html`) |
//! | `GET /assets/{name}` | the page's scripts, styles and licence, embedded in the binary |
//! | `GET /api/snapshot` | the whole state as JSON, with `last_id` |
//! | `GET /api/stream` | the live changes after `Last-Event-ID` or `?after=`, as SSE |
//! | `POST /api/alerts/acknowledge` | acknowledge a firing alert |
//! | `POST /api/silences` | silence alerts for a while |
//!
//! GETs never change state. POSTs need `Content-Type: application/json` (415 otherwise,
//! which also turns away cross-site form posts, which cannot send that type), a body of at
//! most [`WebLimits::body_bytes`](super::WebLimits::body_bytes) (413) and, when a token is
//! set, `Authorization: Bearer TOKEN` (401; compared in constant time). While the server
//! listens on a loopback address, a request whose `Host` is a name other than `localhost`
//! is refused with 421, so that a page on another site cannot reach it by rebinding its
//! DNS name to 127.0.0.1. A request under `/api/`, and every request that is not a GET or
//! HEAD, that a browser marks as coming from another site's page (`Sec-Fetch-Site` other
//! than `same-origin`/`none`, or an `Origin` other than the server's own) is refused with
//! 403: another site can neither post to the dashboard nor hold its stream slots or load its
//! snapshot through a visitor's browser. No response carries CORS headers. The token is
//! read from the `Authorization` header only (never from the URL) and never logged or
//! echoed.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::Instant;
use wot_alerts::Silence;

use super::Server;
use super::journal::{Behind, frame};
use super::state::clip;

/// The Content-Security-Policy of every response: the page's own scripts, styles and
/// connections only, no inline code, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/// Frames one live-stream write carries at most.
const BATCH: usize = 256;
/// Bytes one live-stream write carries at most (plus one frame): what a connection that
/// does not drain can hold.
const BATCH_BYTES: usize = 64 << 10;
/// Longest silence accepted: 7 days.
const MAX_SILENCE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Who acknowledges, as the alert manager records it.
const BY: &str = "web dashboard";

/// An embedded file: name, content type, bytes.
type Asset = (&'static str, &'static str, &'static [u8]);

/// The page's files, embedded from `wot-dashboard-example/web/`.
const ASSETS: &[Asset] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../web/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../web/app.css"),
    ),
    (
        "uplot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/uplot.iife.min.js"),
    ),
    (
        "uplot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../web/uplot.min.css"),
    ),
    (
        "uplot.LICENSE",
        "text/plain; charset=utf-8",
        include_bytes!("../../web/uplot.LICENSE"),
    ),
];

/// The router of the web dashboard over `server`.
pub(crate) fn router(server: Arc<Server>) -> Router {
    let body_limit = server.limits.body_bytes;
    Router::new()
        .route("/", get(index))
        .route("/assets/{name}", get(asset))
        .route("/api/snapshot", get(snapshot))
        .route("/api/stream", get(stream))
        .route("/api/alerts/acknowledge", post(acknowledge))
        .route("/api/silences", post(silence))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(
            server.clone(),
            guard_headers,
        ))
        .with_state(server)
}

/// `{"error": text}` with `status`.
fn error(status: StatusCode, text: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": text.into()}))).into_response()
}

/// A refused request: its status and why, answered as `{"error": why}`.
#[derive(Debug)]
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = self.0;
        let mut response = error(status, self.1);
        if status == StatusCode::UNAUTHORIZED {
            // The scheme to use, as HTTP asks of a 401 (Bearer: browsers show no dialog).
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"wot-dashboard\""),
            );
        }
        response
    }
}

fn json_response(value: &Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Refuses foreign `Host` names (when asked to), then adds the security headers to the
/// response, and `Cache-Control: no-store` under `/api/`.
async fn guard_headers(
    State(server): State<Arc<Server>>,
    request: Request,
    next: Next,
) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let guarded = api || request.method() != Method::GET && request.method() != Method::HEAD;
    let host = host_of(&request);
    let mut response = if server.check_host && !host_allowed(host.as_deref()) {
        error(
            StatusCode::MISDIRECTED_REQUEST,
            "this server answers only to localhost or an IP address",
        )
    } else if guarded && cross_site(request.headers(), host.as_deref()) {
        error(
            StatusCode::FORBIDDEN,
            "the dashboard's API answers only its own page (cross-site request refused)",
        )
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if api {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The authority the request was sent to: its `Host` header, or, when there is none (HTTP/2
/// carries it in the request line), the URI's authority. A `Host` that is not text becomes
/// U+FFFD, which no allowed name matches.
fn host_of(request: &Request) -> Option<String> {
    match request.headers().get(header::HOST) {
        Some(host) => Some(host.to_str().unwrap_or("\u{fffd}").to_owned()),
        None => request.uri().authority().map(|a| a.as_str().to_owned()),
    }
}

/// Whether a browser says this request comes from another site's page: a `Sec-Fetch-Site`
/// other than `same-origin` or `none` (typed in, bookmarked), or an `Origin` that is not
/// `http(s)://` + the request's own host (`null` included). Requests without either
/// header (curl, scripts) are not cross-site: they carry no visitor's credentials and are
/// held to the token like any other.
fn cross_site(headers: &HeaderMap, host: Option<&str>) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or_default();
        if !site.eq_ignore_ascii_case("same-origin") && !site.eq_ignore_ascii_case("none") {
            return true;
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return true;
    };
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    match (authority, host) {
        (Some(authority), Some(host)) => !authority.eq_ignore_ascii_case(host),
        _ => true,
    }
}

/// Whether the host a request was sent to ([`host_of`]) names `localhost` or an IP address
/// (or is absent, as from an HTTP/1.0 client).
fn host_allowed(host: Option<&str>) -> bool {
    let Some(host) = host else {
        return true;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        // `[v6]` or `[v6]:port`
        match rest.split_once(']') {
            Some((ip, _)) => ip,
            None => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok()
}

/// Whether `given` equals `expected`, in time that depends on the length of `expected`
/// only: not on where the bytes differ, nor on the length of `given`.
fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = given.len() ^ expected.len();
    for (i, byte) in expected.iter().enumerate() {
        let other = given.get(i).copied().unwrap_or(0);
        diff = std::hint::black_box(diff | usize::from(other ^ byte));
    }
    diff == 0
}

/// The checks of a state-changing request: the token (401), then the content type (415).
fn check_post(server: &Server, headers: &HeaderMap) -> Result<(), Refusal> {
    if let Some(token) = &server.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !constant_time_eq(given.trim().as_bytes(), token.as_bytes()) {
            return Err(Refusal(
                StatusCode::UNAUTHORIZED,
                "this request needs the dashboard's token (Authorization: Bearer TOKEN)".into(),
            ));
        }
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(Refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be JSON (Content-Type: application/json)".into(),
        ));
    }
    Ok(())
}

/// The request body parsed as `T`, or the error response: 413 past the body limit, 400 for
/// anything else.
fn parse_body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, Refusal> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Refusal(status, "the body is too large".into())
        } else {
            Refusal(StatusCode::BAD_REQUEST, "the body could not be read".into())
        }
    })?;
    serde_json::from_slice(&body)
        .map_err(|e| Refusal(StatusCode::BAD_REQUEST, format!("invalid request: {e}")))
}

async fn index() -> Response {
    asset(Path("index.html".to_owned())).await
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, bytes)) => {
            ([(header::CONTENT_TYPE, *content_type)], *bytes).into_response()
        }
        None => not_found().await,
    }
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such page")
}

pub(crate) async fn snapshot(State(server): State<Arc<Server>>) -> Response {
    // At most `snapshots` copies of the state at once, so that a burst of requests cannot
    // multiply the memory; the others wait (the semaphore is never closed).
    let Ok(_place) = server.snapshots.acquire().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping");
    };
    // The snapshot and its `last_id` under one lock: nothing between them.
    let value = server.with_hub(|hub| hub.model.snapshot(SystemTime::now(), hub.journal.last_id()));
    json_response(&value)
}

/// Where a stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// With the next change (no `Last-Event-ID`, no `after`).
    Live,
    /// After this id (a position the journal may no longer cover).
    After(u64),
}

/// The start position: `Last-Event-ID` wins over `?after=`; a value that is not a number
/// is a position no journal covers (the client is told to start again).
fn start_of(headers: &HeaderMap, query: Option<&str>) -> Start {
    let parse = |text: &str| Start::After(text.trim().parse().unwrap_or(0));
    if let Some(id) = headers.get("last-event-id") {
        let id = id.to_str().unwrap_or("x");
        if !id.trim().is_empty() {
            return parse(id);
        }
    }
    let after = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "after")
            .map(|(_, v)| v.into_owned())
    });
    match after {
        Some(after) if !after.trim().is_empty() => parse(&after),
        _ => Start::Live,
    }
}

async fn stream(
    State(server): State<Arc<Server>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Ok(permit) = server.clients.clone().try_acquire_owned() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many live streams are open; close a dashboard tab",
        );
    };
    let start = start_of(&headers, query.as_deref());
    let body = Body::from_stream(live_frames(server, start, permit));
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        )],
        body,
    )
        .into_response()
}

/// One stream client: where it is in the journal, and when it last got something.
struct Client {
    server: Arc<Server>,
    cursor: u64,
    changed: watch::Receiver<u64>,
    started: bool,
    quiet_until: Instant,
    /// Held for as long as the stream lives: the client's place among the allowed ones.
    _permit: OwnedSemaphorePermit,
}

/// The bytes of a live stream: `retry:` first, then the frames after `start` from the
/// journal, in batches, as they come; `: keep-alive` after a quiet
/// [`WebLimits::keep_alive`](super::WebLimits::keep_alive); one `reset` (carrying the newest
/// id, after which the stream goes on) when the position is not covered. A client that does
/// not read holds only its position: the journal is shared.
pub(crate) fn live_frames(
    server: Arc<Server>,
    start: Start,
    permit: OwnedSemaphorePermit,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let changed = server.changed.subscribe();
    let cursor = match start {
        Start::Live => server.with_hub(|hub| hub.journal.last_id()),
        Start::After(id) => id,
    };
    let client = Client {
        quiet_until: Instant::now() + server.limits.keep_alive,
        server,
        cursor,
        changed,
        started: false,
        _permit: permit,
    };
    futures::stream::unfold(client, |mut client| async move {
        let bytes = client.next_write().await?;
        client.quiet_until = Instant::now() + client.server.limits.keep_alive;
        Some((Ok(bytes), client))
    })
}

impl Client {
    async fn next_write(&mut self) -> Option<Bytes> {
        let mut out: Vec<Bytes> = Vec::new();
        if !self.started {
            self.started = true;
            let retry = self.server.limits.retry.as_millis();
            out.push(Bytes::from(format!("retry: {retry}\n\n")));
        }
        loop {
            if self.server.closing.load(Ordering::SeqCst) {
                return None;
            }
            // Seen before reading: a change pushed after this marks the receiver again.
            self.changed.borrow_and_update();
            let cursor = self.cursor;
            self.cursor = self.server.with_hub(|hub| {
                match hub.journal.read_after(cursor, BATCH, BATCH_BYTES, &mut out) {
                    Ok(last) => last,
                    Err(Behind { newest }) => {
                        out.push(frame(Some(newest), "reset", &json!({})));
                        newest
                    }
                }
            });
            if !out.is_empty() {
                return Some(out.concat().into());
            }
            tokio::select! {
                changed = self.changed.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                () = tokio::time::sleep_until(self.quiet_until) => {
                    return Some(Bytes::from_static(b": keep-alive\n\n"));
                }
            }
        }
    }
}

/// `POST /api/alerts/acknowledge` body.
#[derive(Debug, Deserialize)]
struct AckRequest {
    rule: String,
    thing: String,
    #[serde(default)]
    comment: Option<String>,
}

async fn acknowledge(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Refusal> {
    check_post(&server, &headers)?;
    let request: AckRequest = parse_body(body)?;
    let comment = request
        .comment
        .filter(|c| !c.is_empty())
        .map(|c| clip(&c, server.limits.text_chars));
    server
        .alerts
        .acknowledge(&request.rule, &request.thing, BY, comment)
        .map_err(|e| Refusal(StatusCode::NOT_FOUND, e.to_string()))?;
    server.refresh_alerts();
    saved(&server, "acknowledgement").await?;
    Ok(json_response(&json!({})))
}

/// Waits until `what` (just made) is in the state directory, if there is one, so that an
/// answer means it outlives a crash; a 500 says it is in force but was not saved.
async fn saved(server: &Server, what: &str) -> Result<(), Refusal> {
    server.alerts.flush().await.map_err(|e| {
        Refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the {what} is in force but could not be saved: {e}"),
        )
    })
}

/// `POST /api/silences` body.
#[derive(Debug, Deserialize)]
struct SilenceRequest {
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    thing: Option<String>,
    duration_s: f64,
    #[serde(default)]
    comment: Option<String>,
}

async fn silence(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Refusal> {
    check_post(&server, &headers)?;
    let request: SilenceRequest = parse_body(body)?;
    let duration = Duration::try_from_secs_f64(request.duration_s)
        .ok()
        .filter(|d| (Duration::from_secs(1)..=MAX_SILENCE).contains(d))
        .ok_or_else(|| {
            Refusal(
                StatusCode::BAD_REQUEST,
                "duration_s must be from 1 second to 7 days".into(),
            )
        })?;
    let limits = server.limits;
    let rule = request.rule.filter(|r| !r.is_empty());
    let thing = request.thing.filter(|t| !t.is_empty());
    let now = server.alerts.now();
    let number = server.with_hub(|hub| {
        if hub.model.prune_silences(&server.alerts, now) >= limits.silences {
            return Err(Refusal(
                StatusCode::BAD_REQUEST,
                format!("too many silences (at most {})", limits.silences),
            ));
        }
        let mut silence = Silence::new(now, now + duration);
        if let Some(rule) = &rule {
            silence = silence.rule(clip(rule, limits.text_chars));
        }
        if let Some(thing) = &thing {
            silence = silence.thing(clip(thing, limits.text_chars));
        }
        if let Some(comment) = request.comment.filter(|c| !c.is_empty()) {
            silence = silence.comment(clip(&comment, limits.text_chars));
        }
        let id = server.alerts.add_silence(silence);
        let number = hub.model.silence_number(id);
        let text = format!(
            "silenced {} on {} for {}",
            rule.as_deref().unwrap_or("every rule"),
            thing.as_deref().unwrap_or("every Thing"),
            humantime::format_duration(duration)
        );
        let notice = hub.model.notice(SystemTime::now(), "silenced", &text);
        hub.journal.push("notice", &notice);
        if let Some(alerts) = hub.model.refresh_alerts(&server.alerts) {
            hub.journal.push("alerts", &alerts);
        }
        Ok(number)
    })?;
    saved(&server, "silence").await?;
    Ok(json_response(&json!({"id": number})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("value"));
        }
        map
    }

    #[test]
    fn the_stream_starts_where_the_client_says() {
        assert_eq!(start_of(&headers(&[]), None), Start::Live);
        assert_eq!(start_of(&headers(&[]), Some("after=12")), Start::After(12));
        assert_eq!(start_of(&headers(&[]), Some("x=1&after=")), Start::Live);
        let last = headers(&[("last-event-id", " 15 ")]);
        assert_eq!(start_of(&last, Some("after=12")), Start::After(15));
        // Not a number: a position no journal covers.
        assert_eq!(
            start_of(&headers(&[("last-event-id", "abc")]), None),
            Start::After(0)
        );
        assert_eq!(start_of(&headers(&[]), Some("after=-1")), Start::After(0));
    }

    #[test]
    fn hosts_are_localhost_or_addresses() {
        for ok in [
            "127.0.0.1:8765",
            "localhost:1",
            "LOCALHOST",
            "[::1]:80",
            "[::1]",
            "10.0.0.2",
        ] {
            assert!(host_allowed(Some(ok)), "{ok}");
        }
        for bad in [
            "evil.example:8765",
            "localhost.evil.example",
            "[::1",
            "127.0.0.1.nip.io",
        ] {
            assert!(!host_allowed(Some(bad)), "{bad}");
        }
        assert!(host_allowed(None));
        assert!(!host_allowed(Some("\u{fffd}")));
    }

    #[test]
    fn requests_from_other_sites_are_recognised() {
        let host = Some("127.0.0.1:8765");
        // curl, scripts: no browser headers.
        assert!(!cross_site(&headers(&[]), host));
        for ok in [
            vec![("origin", "http://127.0.0.1:8765")],
            vec![("origin", "https://127.0.0.1:8765")],
            vec![("sec-fetch-site", "same-origin")],
            vec![("sec-fetch-site", "none")],
            vec![
                ("sec-fetch-site", "same-origin"),
                ("origin", "http://127.0.0.1:8765"),
            ],
        ] {
            assert!(!cross_site(&headers(&ok), host), "{ok:?}");
        }
        for bad in [
            vec![("origin", "http://evil.example")],
            vec![("origin", "http://127.0.0.1:8766")],
            vec![("origin", "http://127.0.0.1:8765.evil.example")],
            vec![("origin", "null")],
            vec![("origin", "file://")],
            vec![("sec-fetch-site", "cross-site")],
            // Another port on the same machine is the same site, not the same origin.
            vec![("sec-fetch-site", "same-site")],
            vec![
                ("sec-fetch-site", "same-origin"),
                ("origin", "http://evil.example"),
            ],
        ] {
            assert!(cross_site(&headers(&bad), host), "{bad:?}");
        }
        assert!(cross_site(&headers(&[("origin", "http://a")]), None));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(!constant_time_eq(b"abc\0", b"abc"));
        assert!(!constant_time_eq(b"ab", b"ab\0"));
        assert!(constant_time_eq(b"", b""));
    }
}
