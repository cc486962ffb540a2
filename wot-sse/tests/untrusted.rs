//! Servers that ask for unreasonable things: extreme `Retry-After` values, `retry: 0` storms,
//! ids that are not valid header values, credentials and cross-origin redirects. Each test
//! runs a raw TCP server on 127.0.0.1 and checks a bounded, documented outcome; time-dependent
//! ones run on tokio's paused clock.

// The HTTP client is the `client` feature; without it only the parser tests run.
#![cfg(feature = "client")]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::{Instant, timeout};
use wot_sse::{Error, Event, EventStream, ReconnectPolicy, SseClient};
use wot_testkit::{AbortOnDrop, RequestHead, read_request_head, serve_connections};

/// What a connection gets: these bytes, then close (at once, after `open_for`, or when the
/// client closes if `open_for` is `None`).
struct Reply {
    bytes: Vec<u8>,
    open_for: Option<Duration>,
}

fn close_after(bytes: impl AsRef<[u8]>) -> Reply {
    Reply {
        bytes: bytes.as_ref().to_vec(),
        open_for: Some(Duration::ZERO),
    }
}

fn hold_after(bytes: impl AsRef<[u8]>) -> Reply {
    Reply {
        bytes: bytes.as_ref().to_vec(),
        open_for: None,
    }
}

const STREAM_HEAD: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";

fn stream(body: &str) -> String {
    format!("{STREAM_HEAD}{body}")
}

struct Server {
    addr: SocketAddr,
    /// Every request head with the (paused or real) time it arrived.
    requests: Arc<Mutex<Vec<(Instant, RequestHead)>>>,
    _task: AbortOnDrop,
}

impl Server {
    /// A server that answers request `n` (from 0) with `reply(n, head)`.
    async fn start(reply: impl Fn(usize, &RequestHead) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let reply = Arc::new(reply);
        let task = serve_connections(listener, move |index, mut socket| {
            let (log, reply) = (log.clone(), reply.clone());
            async move {
                let Some(head) = read_request_head(&mut socket).await else {
                    return;
                };
                let answer = reply(index, &head);
                log.lock().unwrap().push((Instant::now(), head));
                if socket.write_all(&answer.bytes).await.is_err() {
                    return;
                }
                match answer.open_for {
                    None => {
                        let mut buf = [0u8; 256];
                        while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
                    }
                    Some(open_for) if !open_for.is_zero() => tokio::time::sleep(open_for).await,
                    Some(_) => {}
                }
                let _ = socket.shutdown().await;
            }
        });
        Self {
            addr,
            requests,
            _task: task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn heads(&self) -> Vec<RequestHead> {
        let requests = self.requests.lock().unwrap();
        requests.iter().map(|(_, head)| head.clone()).collect()
    }

    fn times(&self) -> Vec<Instant> {
        let requests = self.requests.lock().unwrap();
        requests.iter().map(|(at, _)| *at).collect()
    }

    fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

fn client(policy: ReconnectPolicy) -> SseClient {
    SseClient::builder().reconnect(policy).build().unwrap()
}

async fn next_within(stream: &mut EventStream, within: Duration) -> Option<Result<Event, Error>> {
    timeout(within, stream.next())
        .await
        .expect("no item in time")
}

// --- Retry-After ----------------------------------------------------------------------------

/// Row 1 and 2 of issue 14: a 503 asking for an absurd wait neither panics nor waits for
/// days; the client tries again after `max_retry_after` (default 5 minutes).
#[tokio::test(start_paused = true)]
async fn an_extreme_retry_after_is_capped_and_never_panics() {
    for asked in [
        "9999999999999999999",
        "99999999999999999999999",
        "999999",
        "Fri, 31 Dec 9999 23:59:59 GMT",
    ] {
        let head = format!(
            "HTTP/1.1 503 Service Unavailable\r\nretry-after: {asked}\r\n\
             content-length: 0\r\nconnection: close\r\n\r\n"
        );
        let server = Server::start(move |n, _| match n {
            0 => close_after(&head),
            _ => hold_after(stream("data: back\n\n")),
        })
        .await;
        let mut events = client(ReconnectPolicy::new().seed(1))
            .get(server.url("/events"))
            .connect()
            .unwrap();

        let error = next_within(&mut events, Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(error.status().map(|s| s.as_u16()), Some(503), "{asked}");
        assert!(!error.is_terminal(), "{asked}: {error}");
        let event = next_within(&mut events, Duration::from_secs(600))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(event.data(), "back");
        let times = server.times();
        let waited = times[1] - times[0];
        assert!(
            waited >= wot_sse::DEFAULT_MAX_RETRY_AFTER
                && waited < wot_sse::DEFAULT_MAX_RETRY_AFTER + Duration::from_secs(2),
            "{asked}: waited {waited:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_retry_after_cap_is_a_setting() {
    let server = Server::start(|n, _| match n {
        0 => close_after(
            "HTTP/1.1 429 Too Many Requests\r\nretry-after: 86400\r\n\
             content-length: 0\r\nconnection: close\r\n\r\n",
        ),
        _ => hold_after(stream("data: back\n\n")),
    })
    .await;
    let policy = ReconnectPolicy::new()
        .seed(1)
        .max_retry_after(Duration::from_secs(20));
    let mut events = client(policy).get(server.url("/events")).connect().unwrap();
    assert!(
        next_within(&mut events, Duration::from_secs(60))
            .await
            .unwrap()
            .is_err()
    );
    assert!(
        next_within(&mut events, Duration::from_secs(60))
            .await
            .unwrap()
            .is_ok()
    );
    let times = server.times();
    let waited = times[1] - times[0];
    assert!(
        waited >= Duration::from_secs(20) && waited < Duration::from_secs(22),
        "{waited:?}"
    );
}

/// Durations from settings cannot overflow the clock either.
#[tokio::test(start_paused = true)]
async fn huge_durations_in_the_settings_do_not_panic() {
    let server = Server::start(|_, _| close_after(stream("retry: 0\ndata: x\n\n"))).await;
    let policy = ReconnectPolicy::new()
        .initial_delay(Duration::MAX)
        .max_delay(Duration::MAX)
        .max_retry_after(Duration::MAX)
        .min_server_retry(Duration::MAX);
    let mut events = SseClient::builder()
        .reconnect(policy)
        .idle_timeout(Duration::MAX)
        .build()
        .unwrap()
        .get(server.url("/events"))
        .connect()
        .unwrap();
    let handle = events.handle();
    assert_eq!(
        next_within(&mut events, Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap()
            .data(),
        "x"
    );
    // Now waiting "forever": still closable at once.
    assert!(
        timeout(Duration::from_secs(3600), events.next())
            .await
            .is_err()
    );
    handle.close();
    assert!(
        next_within(&mut events, Duration::from_secs(1))
            .await
            .is_none()
    );
    assert_eq!(server.count(), 1);
}

// --- retry: 0 storms ------------------------------------------------------------------------

/// Row 12 of issue 14: `retry: 0`, one event, close, forever. Each connection delivers an
/// event, but none stays up: the floor on the server's `retry:` and the backoff keep the
/// connections to a handful a minute instead of thousands.
#[tokio::test(start_paused = true)]
async fn a_retry_zero_storm_is_slowed_by_the_floor_and_the_backoff() {
    let server = Server::start(|_, _| close_after(stream("retry: 0\ndata: x\n\n"))).await;
    let mut events = client(ReconnectPolicy::new().seed(9))
        .get(server.url("/events"))
        .connect()
        .unwrap();
    let state = events.state();

    let end = Instant::now() + Duration::from_secs(60);
    let mut received = 0;
    while let Ok(item) = tokio::time::timeout_at(end, events.next()).await {
        let event = item.expect("the stream never ends").expect("no errors");
        assert_eq!(event.data(), "x");
        received += 1;
    }
    let connections = server.count();
    assert_eq!(received, connections);
    assert!(
        (5..=15).contains(&connections),
        "{connections} connections in 60 s"
    );
    // The delays grew: the wait now is far above the 1 s floor.
    let times = server.times();
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().all(|gap| *gap >= Duration::from_millis(500)),
        "{gaps:?}"
    );
    assert!(
        gaps.last()
            .is_some_and(|gap| *gap >= Duration::from_secs(5)),
        "{gaps:?}"
    );
    // The give-up count is untouched: every connection delivered data.
    assert!(matches!(
        *state.borrow(),
        wot_sse::ConnectionState::Reconnecting { attempt: 1, .. }
    ));
}

/// The floor is on what the server asks for: a delay of zero the user set stays zero, and a
/// policy may lower the floor (as the contract-test service does).
#[tokio::test(start_paused = true)]
async fn the_users_zero_delay_stays_zero_and_the_floor_is_a_setting() {
    // No `retry:` from the server: the user's zero delay applies, the backoff of zero is zero.
    let server = Server::start(|n, _| match n {
        0..=3 => close_after(stream("data: x\n\n")),
        _ => hold_after(stream("data: last\n\n")),
    })
    .await;
    let policy = ReconnectPolicy::new().initial_delay(Duration::ZERO).seed(1);
    let mut events = client(policy).get(server.url("/events")).connect().unwrap();
    let started = Instant::now();
    for _ in 0..5 {
        assert!(
            next_within(&mut events, Duration::from_secs(60))
                .await
                .unwrap()
                .is_ok()
        );
    }
    assert_eq!(started.elapsed(), Duration::ZERO);

    // `retry: 0` with the floor lowered to zero: the server's value as sent.
    let server = Server::start(|n, _| match n {
        0..=3 => close_after(stream("retry: 0\ndata: x\n\n")),
        _ => hold_after(stream("data: last\n\n")),
    })
    .await;
    let policy = ReconnectPolicy::new()
        .min_server_retry(Duration::ZERO)
        .seed(1);
    let mut events = client(policy).get(server.url("/events")).connect().unwrap();
    let started = Instant::now();
    for _ in 0..5 {
        assert!(
            next_within(&mut events, Duration::from_secs(60))
                .await
                .unwrap()
                .is_ok()
        );
    }
    assert_eq!(started.elapsed(), Duration::ZERO);
}

/// A connection that stays open for `stable_after` resets the backoff.
#[tokio::test(start_paused = true)]
async fn a_stable_connection_resets_the_backoff() {
    let server = Server::start(|n, _| match n {
        0..=3 => close_after(stream("data: quick\n\n")),
        4 => Reply {
            bytes: stream("data: stable\n\n").into_bytes(),
            open_for: Some(Duration::from_secs(20)),
        },
        _ => hold_after(stream("data: after\n\n")),
    })
    .await;
    let policy = ReconnectPolicy::new().jitter(0.0);
    let mut events = client(policy).get(server.url("/events")).connect().unwrap();
    for _ in 0..6 {
        assert!(
            next_within(&mut events, Duration::from_secs(120))
                .await
                .unwrap()
                .is_ok()
        );
    }
    let times = server.times();
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    // 1, 1.5, 2.25, 3.375 s after the quick ones; after 20 s open, 1 s again.
    for (gap, want) in gaps.iter().zip([1.0, 1.5, 2.25, 3.375, 21.0]) {
        assert!((gap - want).abs() < 0.05, "{gaps:?}");
    }
}

// --- ids that are not header values ---------------------------------------------------------

/// Decodes `%XX` escapes, as a server that knows the documented rule does.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Row 11 of issue 14: an id with a DEL byte (0x7F), which no header value may hold. The
/// client sends it percent-encoded instead of leaving it out, so a server that replays from
/// `Last-Event-ID` resumes where the client stands rather than starting over forever.
#[tokio::test(start_paused = true)]
async fn an_id_that_is_no_header_value_is_sent_percent_encoded_and_resumes() {
    const IDS: [&str; 3] = ["a\u{7F}1", "a\u{7F}2%", "a\u{7F}3"];
    let server = Server::start(|_, head| {
        let resume_at = head
            .last_event_id()
            .map(percent_decode)
            .and_then(|id| IDS.iter().position(|known| known.as_bytes() == id))
            .map_or(0, |seen| seen + 1);
        match IDS.get(resume_at) {
            // One event per connection, so every one after the first needs the resume.
            Some(id) => close_after(stream(&format!("id: {id}\ndata: {resume_at}\n\n"))),
            None => close_after("HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n"),
        }
    })
    .await;
    let mut events = client(ReconnectPolicy::new().seed(1))
        .get(server.url("/events"))
        .connect()
        .unwrap();
    let mut seen = Vec::new();
    while let Some(item) = next_within(&mut events, Duration::from_secs(60)).await {
        let event = item.unwrap();
        seen.push((event.data().to_owned(), event.id().to_owned()));
        assert!(seen.len() <= 3, "the events repeat: {seen:?}");
    }
    assert_eq!(
        seen,
        [("0", IDS[0]), ("1", IDS[1]), ("2", IDS[2])]
            .map(|(data, id)| (data.to_owned(), id.to_owned()))
    );
    let sent: Vec<Option<String>> = server
        .heads()
        .iter()
        .map(|head| head.last_event_id().map(str::to_owned))
        .collect();
    assert_eq!(
        sent,
        [None, Some("a%7F1"), Some("a%7F2%25"), Some("a%7F3")].map(|id| id.map(str::to_owned))
    );
}

// --- credentials and other origins ----------------------------------------------------------

fn redirect_to(location: &str) -> Reply {
    close_after(format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\ncontent-length: 0\r\n\
         connection: close\r\n\r\n"
    ))
}

fn sensitive(value: &'static str) -> wot_sse::HeaderValue {
    let mut value = wot_sse::HeaderValue::from_static(value);
    value.set_sensitive(true);
    value
}

/// Row 4 of issue 14 (the wot-sse side): a header marked sensitive, such as a TD's `X-Token`,
/// is a credential: it goes to the origin it was set for and is dropped on a redirect to
/// another origin (two ports on 127.0.0.1 are two origins). The redirect is still followed.
#[tokio::test]
async fn sensitive_custom_headers_and_query_tokens_stay_with_their_origin() {
    let other = Server::start(|_, _| hold_after(stream("data: other\n\n"))).await;
    let elsewhere = other.url("/events");
    let origin = Server::start(move |_, head| match head.path() {
        "/away" => redirect_to(&elsewhere),
        "/here" => redirect_to("/events"),
        _ => hold_after(stream("data: origin\n\n")),
    })
    .await;
    let sse = client(ReconnectPolicy::new());

    let requests = [
        sse.get(origin.url("/away"))
            .header("x-token", sensitive("Bearer s3cret")),
        sse.get(origin.url("/away"))
            .credential_header("x-api-key", "s3cret"),
        sse.get(origin.url("/away"))
            .bearer_token("s3cret")
            .token_in_query("access_token"),
    ];
    for request in requests {
        let mut events = request.connect().unwrap();
        let event = next_within(&mut events, Duration::from_secs(10))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(event.data(), "other");
    }
    let first_hops = origin.heads();
    assert_eq!(first_hops.len(), 3);
    assert_eq!(first_hops[0].header("x-token"), Some("Bearer s3cret"));
    assert_eq!(first_hops[1].header("x-api-key"), Some("s3cret"));
    assert!(first_hops[2].as_str().contains("access_token=s3cret"));
    for head in other.heads() {
        assert!(
            !head.as_str().contains("s3cret"),
            "the other origin got the secret:\n{}",
            head.as_str()
        );
    }

    // On the same origin the credentials follow the redirect.
    let same = Server::start(move |_, head| match head.path() {
        "/here" => redirect_to("/events"),
        _ => hold_after(stream("data: same\n\n")),
    })
    .await;
    let mut events = sse
        .get(same.url("/here"))
        .header("x-token", sensitive("Bearer s3cret"))
        .connect()
        .unwrap();
    assert!(
        next_within(&mut events, Duration::from_secs(10))
            .await
            .unwrap()
            .is_ok()
    );
    let heads = same.heads();
    assert_eq!(heads.len(), 2);
    assert_eq!(heads[1].path(), "/events");
    assert_eq!(heads[1].header("x-token"), Some("Bearer s3cret"));
}

// --- ids and event types over their limits --------------------------------------------------

/// Row 3 of issue 14: one 10 MiB `id:` line, then thousands of tiny events. The id is dropped
/// at its limit as it arrives (a typed, recoverable error), the previous id stays, and the
/// events that follow all share one small id.
#[tokio::test]
async fn a_ten_mebibyte_id_is_dropped_and_the_events_after_it_share_the_last_id() {
    const EVENTS: usize = 5000;
    let server = Server::start(|_, _| {
        let mut body = String::from("id: good\ndata: first\n\nid: ");
        body.push_str(&"i".repeat(10 * 1024 * 1024));
        body.push_str("\ndata: still delivered\n\n");
        body.push_str(&"data: tiny\n\n".repeat(EVENTS));
        hold_after(stream(&body))
    })
    .await;
    let mut events = client(ReconnectPolicy::new())
        .get(server.url("/events"))
        .connect()
        .unwrap();
    let first = next_within(&mut events, Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((first.data(), first.id()), ("first", "good"));
    let error = next_within(&mut events, Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap_err();
    assert!(error.is_field_too_long() && !error.is_terminal(), "{error}");
    assert_eq!(
        error.field_error(),
        Some(&wot_sse::parser::ParseError::IdTooLong {
            limit: wot_sse::parser::DEFAULT_MAX_ID_LEN
        })
    );
    let after = next_within(&mut events, Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((after.data(), after.id()), ("still delivered", "good"));
    for _ in 0..EVENTS {
        let event = next_within(&mut events, Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((event.data(), event.id()), ("tiny", "good"));
    }
    assert_eq!(events.last_event_id(), "good");
    assert_eq!(server.count(), 1, "the connection stays");
}

/// Events after one long (but allowed) id share one copy of it.
#[tokio::test]
async fn events_share_one_copy_of_a_long_id() {
    let id = "k".repeat(1024);
    let body = format!("id: {id}\ndata: 1\n\ndata: 2\n\ndata: 3\n\n");
    let server = Server::start(move |_, _| hold_after(stream(&body))).await;
    let mut events = client(ReconnectPolicy::new())
        .get(server.url("/events"))
        .connect()
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(
            next_within(&mut events, Duration::from_secs(10))
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert!(seen.iter().all(|event| event.id() == id));
    let text = seen[0].id().as_ptr();
    assert!(
        seen.iter().all(|event| event.id().as_ptr() == text),
        "one allocation"
    );
    let kept: wot_sse::EventId = seen[2].shared_id().clone();
    assert_eq!(kept.as_ptr(), text);
}

/// An over-long event type skips its event (under another type it would reach the wrong
/// listener); the limits are settings.
#[tokio::test]
async fn an_over_long_event_type_skips_its_event_and_the_limits_are_settings() {
    let long_type = "t".repeat(2000);
    let body = format!(
        "event: {long_type}\ndata: misrouted\n\nevent: short\ndata: ok\n\n\
         id: 123456789\ndata: long id\n\n: {}\ndata: after comment\n\n",
        "c".repeat(100)
    );
    let server = Server::start(move |_, _| hold_after(stream(&body))).await;
    let mut events = SseClient::builder()
        .max_id_len(8)
        .max_comment_len(50)
        .build()
        .unwrap()
        .get(server.url("/events"))
        .max_event_type_len(1024)
        .connect()
        .unwrap();
    let mut seen = Vec::new();
    let mut messages = events.messages();
    for _ in 0..6 {
        let item = timeout(Duration::from_secs(10), messages.next())
            .await
            .unwrap()
            .unwrap();
        seen.push(match item {
            Ok(wot_sse::Message::Event(event)) => {
                format!("{} {} {}", event.event_type(), event.data(), event.id())
            }
            Ok(wot_sse::Message::Comment(text)) => format!("comment {text}"),
            Ok(other) => panic!("unexpected message {other:?}"),
            Err(error) => {
                assert!(error.is_field_too_long(), "{error}");
                format!("{:?}", error.field_error().unwrap())
            }
        });
    }
    assert_eq!(
        seen,
        [
            "EventTypeTooLong { limit: 1024 }",
            "short ok ",
            "IdTooLong { limit: 8 }",
            "message long id ",
            "CommentTooLong { limit: 50 }",
            "message after comment ",
        ]
    );
}

// --- timeouts -------------------------------------------------------------------------------

/// Class 3 of issue 14: a server that accepts the connection and never answers. Even with the
/// idle timeout off, the connect timeout (30 s by default) ends each attempt, and the stream
/// gives up after `max_attempts`, so a caller is never stuck.
#[tokio::test(start_paused = true)]
async fn a_server_that_never_answers_is_bounded_by_the_connect_timeout() {
    let server = Server::start(|_, _| hold_after("")).await;
    let started = Instant::now();
    let mut events = SseClient::builder()
        .idle_timeout(None)
        .reconnect(ReconnectPolicy::new().max_attempts(Some(2)).jitter(0.0))
        .build()
        .unwrap()
        .get(server.url("/events"))
        .connect()
        .unwrap();
    let first = next_within(&mut events, Duration::from_secs(120))
        .await
        .unwrap()
        .unwrap_err();
    assert!(first.is_timeout() && !first.is_terminal(), "{first}");
    assert_eq!(started.elapsed(), wot_sse::DEFAULT_CONNECT_TIMEOUT);
    let last = next_within(&mut events, Duration::from_secs(120))
        .await
        .unwrap()
        .unwrap_err();
    assert!(last.is_retries_exhausted(), "{last}");
    assert!(
        next_within(&mut events, Duration::from_secs(1))
            .await
            .is_none()
    );
    assert_eq!(server.count(), 2);

    // A shorter setting applies; so does an idle timeout shorter than it.
    for (connect, idle, waited) in [(5, 45, 5), (20, 7, 7)] {
        let server = Server::start(|_, _| hold_after("")).await;
        let started = Instant::now();
        let mut events = SseClient::builder()
            .connect_timeout(Duration::from_secs(connect))
            .idle_timeout(Duration::from_secs(idle))
            .build()
            .unwrap()
            .get(server.url("/events"))
            .connect()
            .unwrap();
        let error = next_within(&mut events, Duration::from_secs(120))
            .await
            .unwrap()
            .unwrap_err();
        assert!(error.is_timeout(), "{error}");
        assert_eq!(started.elapsed(), Duration::from_secs(waited));
    }
}
