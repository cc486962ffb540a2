//! A hostile Thing: a WoT server on 127.0.0.1 that serves a Thing Description and its SSE
//! streams the way a broken or malicious device would, one named [`Scenario`] at a time.
//!
//! The server answers on two origins: the Thing's own (`addr`) and a second one
//! (`other_addr`) that stands for an attacker's host. Scenarios that redirect send the client
//! to the second origin, which records every request head, so a test can check that no
//! credential arrived there.
//!
//! Paths on the Thing's origin:
//!
//! | path | what it serves |
//! |---|---|
//! | `/td` | the scenario's Thing Description (see [`Scenario::td`]) |
//! | `/events/alarm` | the event stream of the `alarm` event (`subscribeevent`, SSE) |
//! | `/properties/temp` | the property `temp`: an SSE stream for `observeproperty`, JSON for `readproperty` |
//! | `/directory/things` | a Thing Directory listing (an array of TDs), as `fetch_directory` of `/directory` reads it |
//!
//! Every wait in a script is a `tokio::time` sleep, so a test on tokio's paused clock runs
//! the slow scenarios (trickles, silences) in no real time.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::sleep;

use crate::head::{RequestHead, read_request_head};
use crate::{AbortOnDrop, serve_connections};

/// The secret every credential scenario configures; a test looks for it on the other origin.
pub const SECRET: &str = "s3cr3t-t0ken-do-not-leak";

/// One way a Thing (or its TD, or its directory) misbehaves.
///
/// [`Scenario::ALL`] lists every one; [`Scenario::name`] is a stable name for test output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scenario {
    // --- time: Retry-After, retry:, silence, trickles ---
    /// 503 with `Retry-After: 9999999999999999999` (fits a u64 of seconds; overflows `Instant`).
    RetryAfterOverflow,
    /// 503 with `Retry-After:` of 30 digits (does not fit a u64).
    RetryAfterHuge,
    /// 503 with `Retry-After: 999999` (11.6 days).
    RetryAfterDays,
    /// 503 with `Retry-After:` an HTTP date in the year 9999.
    RetryAfterFarDate,
    /// 503 with a `Retry-After` that is neither a number nor a date.
    RetryAfterGarbage,
    /// `retry: 0`, one event, close: forever.
    RetryZeroStorm,
    /// `retry:` with 40 digits, then close.
    RetryHuge,
    /// The SSE server accepts the connection and never answers.
    NeverAnswers,
    /// Response headers, then silence forever.
    HeadersThenSilence,
    /// One byte per second, forever.
    SlowlorisTrickle,
    /// 500 on every request, forever.
    ServerErrorForever,
    /// 204 No Content: the server asks the client to stop.
    NoContent,
    // --- sizes ---
    /// One 10 MiB `id:` line, then 10,000 tiny events.
    HugeIdThenTinyEvents,
    /// A 1 KiB id on every one of 10,000 events.
    KibIdOnEveryEvent,
    /// One 10 MiB `event:` line.
    HugeEventType,
    /// A 16 MiB line without a newline.
    EndlessLine,
    /// 200,000 comment lines.
    CommentFlood,
    /// One 16 MiB comment line.
    HugeComment,
    /// 16 MiB of `data:` lines in one event.
    HugeEventData,
    /// 100,000 events as fast as the socket takes them.
    EventFlood,
    /// `Content-Length: 10 GiB`, a few bytes, close.
    ContentLengthLie,
    /// A chunked body whose chunk sizes are not hexadecimal.
    BrokenChunked,
    /// `Content-Encoding: gzip` on a body the client never asked to be compressed.
    GzipBody,
    /// A gzip bomb: 60 KiB that inflate to about 10 MiB of zeros per chunk, repeated.
    GzipBomb,
    /// `text/html` instead of `text/event-stream`.
    WrongContentType,
    // --- ids and resume ---
    /// An id with a DEL byte (0x7F), and a server that replays from `Last-Event-ID`.
    IdWithDel,
    /// An id with control characters (ESC, BEL, CR in the middle of nothing).
    IdWithControlChars,
    /// An id with a NUL byte (ignored by the WHATWG parser).
    IdWithNul,
    // --- text ---
    /// Invalid UTF-8 in data, id, event type and field names.
    InvalidUtf8Everywhere,
    /// Terminal escape sequences and control characters in data and event type.
    ControlCharsInData,
    /// Plain `data:` events (type `message`) on per-property forms, no Thing-level form.
    PlainMessageEvents,
    /// Property values of ±1e308, 1e400, `NaN` text, huge integers, deeply nested arrays.
    ExtremeNumbers,
    // --- redirects and credentials ---
    /// The SSE form redirects to itself forever.
    RedirectLoop,
    /// Bearer token in `Authorization`; the SSE form redirects to the other origin.
    CrossOriginRedirectBearer,
    /// API key in a custom header `X-Token`; the SSE form redirects to the other origin.
    CrossOriginRedirectHeaderKey,
    /// API key in the query parameter `token`; the SSE form redirects to the other origin.
    CrossOriginRedirectQueryKey,
    /// HTTP Basic credentials; the SSE form redirects to the other origin.
    CrossOriginRedirectBasic,
    /// Bearer token with a custom header name (`name: X-Token`), redirected to the other origin.
    CrossOriginRedirectBearerCustomHeader,
    /// `readproperty` (a one-shot) redirects to the other origin with an API key header.
    CrossOriginRedirectOneShot,
    // --- Thing Descriptions and directories ---
    /// The TD server accepts the connection and never answers.
    TdNeverAnswers,
    /// The TD arrives one byte per second.
    TdSlowloris,
    /// A 20 MiB TD.
    TdHugeBody,
    /// A TD whose schema nests 100,000 levels deep.
    TdDeepNesting,
    /// A TD with a catastrophic regex (`((a+)+)+$` style and `(a{1000}){1000}`).
    TdRegexBomb,
    /// A 170 KB TD with 2,000 `pattern` regexes.
    TdManyPatterns,
    /// A TD with 100,000 properties.
    TdManyAffordances,
    /// A TD whose title, descriptions and names hold terminal escape sequences.
    TdControlChars,
    /// A TD with bytes that are not UTF-8.
    TdInvalidUtf8,
    /// A TD whose property range is `-1e308..1e308` with values at the ends.
    TdExtremeRange,
    /// A directory listing of 100,000 small TDs (15 MB).
    DirectoryHuge,
    /// A property schema with a `pattern`, updated 10,000 times.
    PatternUpdates,
}

impl Scenario {
    /// Every scenario, in the order of the enum.
    pub const ALL: &'static [Scenario] = &[
        Scenario::RetryAfterOverflow,
        Scenario::RetryAfterHuge,
        Scenario::RetryAfterDays,
        Scenario::RetryAfterFarDate,
        Scenario::RetryAfterGarbage,
        Scenario::RetryZeroStorm,
        Scenario::RetryHuge,
        Scenario::NeverAnswers,
        Scenario::HeadersThenSilence,
        Scenario::SlowlorisTrickle,
        Scenario::ServerErrorForever,
        Scenario::NoContent,
        Scenario::HugeIdThenTinyEvents,
        Scenario::KibIdOnEveryEvent,
        Scenario::HugeEventType,
        Scenario::EndlessLine,
        Scenario::CommentFlood,
        Scenario::HugeComment,
        Scenario::HugeEventData,
        Scenario::EventFlood,
        Scenario::ContentLengthLie,
        Scenario::BrokenChunked,
        Scenario::GzipBody,
        Scenario::GzipBomb,
        Scenario::WrongContentType,
        Scenario::IdWithDel,
        Scenario::IdWithControlChars,
        Scenario::IdWithNul,
        Scenario::InvalidUtf8Everywhere,
        Scenario::ControlCharsInData,
        Scenario::PlainMessageEvents,
        Scenario::ExtremeNumbers,
        Scenario::RedirectLoop,
        Scenario::CrossOriginRedirectBearer,
        Scenario::CrossOriginRedirectHeaderKey,
        Scenario::CrossOriginRedirectQueryKey,
        Scenario::CrossOriginRedirectBasic,
        Scenario::CrossOriginRedirectBearerCustomHeader,
        Scenario::CrossOriginRedirectOneShot,
        Scenario::TdNeverAnswers,
        Scenario::TdSlowloris,
        Scenario::TdHugeBody,
        Scenario::TdDeepNesting,
        Scenario::TdRegexBomb,
        Scenario::TdManyPatterns,
        Scenario::TdManyAffordances,
        Scenario::TdControlChars,
        Scenario::TdInvalidUtf8,
        Scenario::TdExtremeRange,
        Scenario::DirectoryHuge,
        Scenario::PatternUpdates,
    ];

    /// A stable snake_case name, for test output.
    pub fn name(self) -> String {
        let debug = format!("{self:?}");
        let mut name = String::with_capacity(debug.len() + 8);
        for (i, c) in debug.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                name.push('_');
            }
            name.push(c.to_ascii_lowercase());
        }
        name
    }

    /// The security scheme the scenario's TD declares, as a JSON object, if any.
    fn security(self) -> Option<&'static str> {
        Some(match self {
            Scenario::CrossOriginRedirectBearer => r#"{"scheme":"bearer","in":"header"}"#,
            Scenario::CrossOriginRedirectHeaderKey | Scenario::CrossOriginRedirectOneShot => {
                r#"{"scheme":"apikey","in":"header","name":"X-Token"}"#
            }
            Scenario::CrossOriginRedirectQueryKey => {
                r#"{"scheme":"apikey","in":"query","name":"token"}"#
            }
            Scenario::CrossOriginRedirectBasic => r#"{"scheme":"basic","in":"header"}"#,
            Scenario::CrossOriginRedirectBearerCustomHeader => {
                r#"{"scheme":"bearer","in":"header","name":"X-Token"}"#
            }
            _ => return None,
        })
    }

    /// Whether the scenario's credentials are meant to be used (it declares a security scheme).
    pub fn has_credentials(self) -> bool {
        self.security().is_some()
    }

    /// The Thing Description the server serves at `/td` for this scenario, as bytes, with
    /// `base` the Thing's origin (`http://addr`).
    ///
    /// A well-formed TD with a `temp` number property (`observeproperty` over SSE at
    /// `/properties/temp`, `readproperty` at the same path) and an `alarm` event
    /// (`subscribeevent` over SSE at `/events/alarm`), unless the scenario is about the TD.
    pub fn td(self, base: &str) -> Vec<u8> {
        match self {
            Scenario::TdHugeBody => {
                let mut td = plain_td(base, self);
                let pad = "x".repeat(20 * 1024 * 1024);
                splice_field(&mut td, &format!(r#""description":"{pad}","#));
                return td.into_bytes();
            }
            Scenario::TdDeepNesting => {
                let depth = 100_000;
                let mut schema = String::with_capacity(depth * 30);
                for _ in 0..depth {
                    schema.push_str(r#"{"type":"array","items":"#);
                }
                schema.push_str(r#"{"type":"number"}"#);
                for _ in 0..depth {
                    schema.push('}');
                }
                let mut td = plain_td(base, self);
                splice_property(&mut td, "deep", &schema);
                return td.into_bytes();
            }
            Scenario::TdRegexBomb => {
                let mut td = plain_td(base, self);
                splice_property(
                    &mut td,
                    "bomb1",
                    r#"{"type":"string","pattern":"^((a+)+)+$"}"#,
                );
                splice_property(
                    &mut td,
                    "bomb2",
                    r#"{"type":"string","pattern":"(a{1000}){1000}(b{1000}){1000}"}"#,
                );
                splice_property(
                    &mut td,
                    "bomb3",
                    r#"{"type":"string","pattern":"\\w{500}\\w{500}\\w{500}\\w{500}"}"#,
                );
                return td.into_bytes();
            }
            Scenario::TdManyPatterns => {
                let mut props = String::new();
                for i in 0..2000 {
                    let _ = write!(
                        props,
                        r#""p{i}":{{"type":"string","pattern":"^[a-z]{{1,{n}}}[0-9]+(x|y|z){{2,{n}}}$","forms":[{{"href":"/properties/p{i}"}}]}},"#,
                        n = 20 + i % 50
                    );
                }
                let mut td = plain_td(base, self);
                splice_properties(&mut td, &props);
                return td.into_bytes();
            }
            Scenario::TdManyAffordances => {
                let mut props = String::with_capacity(100_000 * 70);
                for i in 0..100_000 {
                    let _ = write!(
                        props,
                        r#""p{i}":{{"type":"number","forms":[{{"href":"/properties/p{i}"}}]}},"#
                    );
                }
                let mut td = plain_td(base, self);
                splice_properties(&mut td, &props);
                return td.into_bytes();
            }
            Scenario::TdInvalidUtf8 => {
                let mut td = plain_td(base, self).into_bytes();
                if let Some(at) = td.windows(7).position(|w| w == b"Hostile") {
                    td.splice(at..at, [0xC3, 0x28, 0xFF, 0xFE]);
                }
                return td;
            }
            _ => {}
        }
        plain_td(base, self).into_bytes()
    }
}

/// The TD every scenario starts from.
fn plain_td(base: &str, scenario: Scenario) -> String {
    let (title, description) = if scenario == Scenario::TdControlChars {
        (
            r"Hostile \u001b[2J\u001b[31mTHING\u0007\u001b]0;pwned\u0007",
            r"line\r\nforged log line\u001b[1A\u0000",
        )
    } else {
        ("Hostile Thing", "A Thing that misbehaves on purpose")
    };
    let range = if scenario == Scenario::TdExtremeRange {
        r#","minimum":-1e308,"maximum":1e308"#
    } else {
        r#","minimum":-50,"maximum":150"#
    };
    let temp_schema = if scenario == Scenario::PatternUpdates {
        r#""type":"string","pattern":"^[0-9]+(\\.[0-9]+)?$""#.to_owned()
    } else {
        format!(r#""type":"number"{range}"#)
    };
    let (security_definitions, security) = match scenario.security() {
        Some(scheme) => (format!(r#"{{"auth":{scheme}}}"#), "auth"),
        None => (r#"{"nosec":{"scheme":"nosec"}}"#.to_owned(), "nosec"),
    };
    let property_name = if scenario == Scenario::TdControlChars {
        r"temp\u001b[5m"
    } else {
        "temp"
    };
    format!(
        r#"{{"@context":"https://www.w3.org/2022/wot/td/v1.1","id":"urn:hostile:{name}","title":"{title}","description":"{description}","base":"{base}/","securityDefinitions":{security_definitions},"security":"{security}","properties":{{"{property_name}":{{{temp_schema},"observable":true,"forms":[{{"href":"properties/temp","op":["readproperty"],"contentType":"application/json"}},{{"href":"properties/temp","op":["observeproperty","unobserveproperty"],"subprotocol":"sse","contentType":"text/event-stream"}}]}}}},"actions":{{}},"events":{{"alarm":{{"data":{{"type":"object"}},"forms":[{{"href":"events/alarm","op":["subscribeevent","unsubscribeevent"],"subprotocol":"sse","contentType":"text/event-stream"}}]}}}}}}"#,
        name = scenario.name(),
    )
}

/// Inserts `field` (ending in a comma) right after the TD's opening brace.
fn splice_field(td: &mut String, field: &str) {
    td.insert_str(1, field);
}

/// Adds one property named `name` with this schema (and a form) to the TD.
fn splice_property(td: &mut String, name: &str, schema: &str) {
    // The schema is an object: put the form inside it.
    let with_form = format!(
        r#"{},"forms":[{{"href":"properties/{name}"}}]}}"#,
        schema.strip_suffix('}').unwrap_or(schema)
    );
    splice_properties(td, &format!(r#""{name}":{with_form},"#));
}

/// Inserts `props` (each ending in a comma) at the start of the TD's `properties`.
fn splice_properties(td: &mut String, props: &str) {
    if let Some(at) = td.find(r#""properties":{"#) {
        td.insert_str(at + r#""properties":{"#.len(), props);
    }
}

/// A hostile Thing server playing one [`Scenario`] on 127.0.0.1, with a second origin
/// standing for another host. Dropping it stops both and every connection.
#[derive(Debug)]
pub struct HostileThing {
    scenario: Scenario,
    addr: SocketAddr,
    other_addr: SocketAddr,
    log: Arc<Mutex<Vec<(Origin, RequestHead)>>>,
    _thing: AbortOnDrop,
    _other: AbortOnDrop,
}

/// Which of the two origins of a [`HostileThing`] a request reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The Thing's own origin, the one its TD was fetched from.
    Thing,
    /// The second origin, standing for an attacker's host.
    Other,
}

impl HostileThing {
    /// Starts the server for `scenario`.
    pub async fn start(scenario: Scenario) -> io::Result<HostileThing> {
        let thing = TcpListener::bind("127.0.0.1:0").await?;
        let other = TcpListener::bind("127.0.0.1:0").await?;
        let addr = thing.local_addr()?;
        let other_addr = other.local_addr()?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared {
            scenario,
            base: format!("http://{addr}"),
            other_base: format!("http://{other_addr}"),
            td: std::sync::OnceLock::new(),
        });
        // Built now, so that a test measuring the client's allocations does not count it.
        shared.td();
        let (thing_log, thing_shared) = (log.clone(), shared.clone());
        let thing_task = serve_connections(thing, move |index, socket| {
            serve_thing(thing_shared.clone(), thing_log.clone(), index, socket)
        });
        let other_log = log.clone();
        let other_task = serve_connections(other, move |_, socket| {
            serve_other(other_log.clone(), socket)
        });
        Ok(HostileThing {
            scenario,
            addr,
            other_addr,
            log,
            _thing: thing_task,
            _other: other_task,
        })
    }

    /// The scenario this server plays.
    pub fn scenario(&self) -> Scenario {
        self.scenario
    }

    /// The Thing's origin, `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The second origin, `http://127.0.0.1:PORT`.
    pub fn other_base(&self) -> String {
        format!("http://{}", self.other_addr)
    }

    /// A URL on the Thing's origin.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The URL of the scenario's Thing Description.
    pub fn td_url(&self) -> String {
        self.url("/td")
    }

    /// The request heads each origin received, in order.
    pub fn requests(&self, origin: Origin) -> Vec<RequestHead> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(o, _)| *o == origin)
            .map(|(_, head)| head.clone())
            .collect()
    }

    /// How many requests reached the Thing's origin at `path`.
    pub fn count(&self, path: &str) -> usize {
        self.requests(Origin::Thing)
            .iter()
            .filter(|head| head.path() == path)
            .count()
    }

    /// Whether [`SECRET`] (or its Basic encoding) appeared in any request to the other origin,
    /// in its request line or any header.
    pub fn secret_leaked(&self) -> bool {
        let basic = basic_encoded();
        self.requests(Origin::Other)
            .iter()
            .any(|head| head.as_str().contains(SECRET) || head.as_str().contains(&basic))
    }
}

/// `user:SECRET` in Base64, as HTTP Basic sends it (the user name is `user`).
pub fn basic_encoded() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("user:{SECRET}"))
}

struct Shared {
    scenario: Scenario,
    base: String,
    other_base: String,
    td: std::sync::OnceLock<Arc<Vec<u8>>>,
}

impl Shared {
    fn td(&self) -> Arc<Vec<u8>> {
        self.td
            .get_or_init(|| Arc::new(self.scenario.td(&self.base)))
            .clone()
    }
}

type Log = Arc<Mutex<Vec<(Origin, RequestHead)>>>;

fn record(log: &Log, origin: Origin, head: &RequestHead) {
    log.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((origin, head.clone()));
}

/// The other origin: records the request, answers an empty event stream and closes.
async fn serve_other(log: Log, mut socket: TcpStream) {
    let Some(head) = read_request_head(&mut socket).await else {
        return;
    };
    record(&log, Origin::Other, &head);
    let _ = socket
        .write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        )
        .await;
}

const SSE_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n";

async fn serve_thing(shared: Arc<Shared>, log: Log, _index: usize, mut socket: TcpStream) {
    let scenario = shared.scenario;
    // The TD server of these scenarios never reads nor answers.
    if scenario == Scenario::TdNeverAnswers {
        std::future::pending::<()>().await;
    }
    let Some(head) = read_request_head(&mut socket).await else {
        return;
    };
    record(&log, Origin::Thing, &head);
    let path = head.path().to_owned();
    let is_read = !head
        .header("accept")
        .is_some_and(|accept| accept.contains("text/event-stream"));
    let result = match path.as_str() {
        "/td" => serve_td(&shared, &mut socket).await,
        "/directory/things" => serve_directory(&shared, &mut socket).await,
        "/properties/temp" if is_read => serve_read(&shared, &mut socket).await,
        "/events/alarm" | "/properties/temp" => serve_stream(&shared, &head, &mut socket).await,
        _ => {
            socket
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await
        }
    };
    drop(result);
}

async fn serve_td(shared: &Shared, socket: &mut TcpStream) -> io::Result<()> {
    let td = shared.td();
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/td+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        td.len()
    );
    socket.write_all(head.as_bytes()).await?;
    if shared.scenario == Scenario::TdSlowloris {
        for byte in td.iter() {
            socket.write_all(&[*byte]).await?;
            sleep(Duration::from_secs(1)).await;
        }
        return Ok(());
    }
    socket.write_all(&td).await
}

async fn serve_directory(shared: &Shared, socket: &mut TcpStream) -> io::Result<()> {
    let count = if shared.scenario == Scenario::DirectoryHuge {
        100_000
    } else {
        2
    };
    socket
        .write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        )
        .await?;
    // Small but complete TDs (about 150 bytes each), so that the listing stays under a
    // client's body limit and only the number of entries is hostile.
    let mut batch = String::new();
    for i in 0..count {
        batch.push(if i == 0 { '[' } else { ',' });
        let _ = write!(
            batch,
            r#"{{"@context":"https://www.w3.org/2022/wot/td/v1.1","id":"urn:hostile:{i}","title":"T{i}","securityDefinitions":{{"n":{{"scheme":"nosec"}}}},"security":"n"}}"#
        );
        if i + 1 == count {
            batch.push(']');
        }
        if batch.len() > 64 * 1024 || i + 1 == count {
            chunk(socket, batch.as_bytes()).await?;
            batch.clear();
        }
    }
    socket.write_all(b"0\r\n\r\n").await
}

async fn chunk(socket: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
    socket
        .write_all(format!("{:x}\r\n", bytes.len()).as_bytes())
        .await?;
    socket.write_all(bytes).await?;
    socket.write_all(b"\r\n").await
}

/// `readproperty`: a JSON value, or a redirect for the one-shot scenario.
async fn serve_read(shared: &Shared, socket: &mut TcpStream) -> io::Result<()> {
    if shared.scenario == Scenario::CrossOriginRedirectOneShot {
        return redirect(socket, &format!("{}/collect", shared.other_base)).await;
    }
    let body = match shared.scenario {
        Scenario::TdExtremeRange | Scenario::ExtremeNumbers => "1e308",
        Scenario::PatternUpdates => "\"21.5\"",
        _ => "21.5",
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await?;
    socket.write_all(body.as_bytes()).await
}

async fn redirect(socket: &mut TcpStream, to: &str) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await
}

async fn status(socket: &mut TcpStream, line: &str, headers: &str) -> io::Result<()> {
    let head =
        format!("HTTP/1.1 {line}\r\n{headers}content-length: 0\r\nconnection: close\r\n\r\n");
    socket.write_all(head.as_bytes()).await
}

/// The data of event `n` for the stream at `path`.
fn data_for(path: &str, n: u64) -> String {
    if path.starts_with("/properties/") {
        format!("{}", 20 + n % 10)
    } else {
        format!("{{\"seq\":{n}}}")
    }
}

/// An ordinary event block, as the Thing-level and affordance-level streams send it.
fn event_block(path: &str, n: u64) -> String {
    let event_type = if path.starts_with("/properties/") {
        "temp"
    } else {
        "alarm"
    };
    format!(
        "id: {n}\nevent: {event_type}\ndata: {}\n\n",
        data_for(path, n)
    )
}

/// The first id the client has not seen: one past `Last-Event-ID` when it is a number.
fn resume_from(head: &RequestHead) -> u64 {
    head.last_event_id()
        .and_then(|id| id.parse::<u64>().ok())
        .map_or(1, |n| n.saturating_add(1))
}

/// Writes `total` bytes of `byte`, 64 KiB at a time.
async fn fill(socket: &mut TcpStream, byte: u8, total: usize) -> io::Result<()> {
    let block = vec![byte; 64 * 1024];
    let mut left = total;
    while left > 0 {
        let n = left.min(block.len());
        socket.write_all(block.get(..n).unwrap_or_default()).await?;
        left -= n;
    }
    Ok(())
}

async fn serve_stream(
    shared: &Shared,
    head: &RequestHead,
    socket: &mut TcpStream,
) -> io::Result<()> {
    let path = head.path();
    let other = &shared.other_base;
    match shared.scenario {
        Scenario::RetryAfterOverflow => {
            status(
                socket,
                "503 Service Unavailable",
                "retry-after: 9999999999999999999\r\n",
            )
            .await
        }
        Scenario::RetryAfterHuge => {
            status(
                socket,
                "503 Service Unavailable",
                "retry-after: 999999999999999999999999999999\r\n",
            )
            .await
        }
        Scenario::RetryAfterDays => {
            status(socket, "503 Service Unavailable", "retry-after: 999999\r\n").await
        }
        Scenario::RetryAfterFarDate => {
            status(
                socket,
                "503 Service Unavailable",
                "retry-after: Fri, 31 Dec 9999 23:59:59 GMT\r\n",
            )
            .await
        }
        Scenario::RetryAfterGarbage => {
            status(
                socket,
                "503 Service Unavailable",
                "retry-after: soon-ish\x01\r\n",
            )
            .await
        }
        Scenario::RetryZeroStorm => {
            socket.write_all(SSE_HEAD).await?;
            let n = resume_from(head);
            let block = format!("retry: 0\n{}", event_block(path, n));
            socket.write_all(block.as_bytes()).await
        }
        Scenario::RetryHuge => {
            socket.write_all(SSE_HEAD).await?;
            let block = format!(
                "retry: 9999999999999999999999999999999999999999\n{}",
                event_block(path, resume_from(head))
            );
            socket.write_all(block.as_bytes()).await
        }
        Scenario::NeverAnswers => std::future::pending().await,
        Scenario::HeadersThenSilence => {
            socket.write_all(SSE_HEAD).await?;
            std::future::pending().await
        }
        Scenario::SlowlorisTrickle => {
            socket.write_all(SSE_HEAD).await?;
            for n in resume_from(head).. {
                for byte in event_block(path, n).bytes() {
                    socket.write_all(&[byte]).await?;
                    sleep(Duration::from_secs(1)).await;
                }
            }
            Ok(())
        }
        Scenario::ServerErrorForever => status(socket, "500 Internal Server Error", "").await,
        Scenario::NoContent => status(socket, "204 No Content", "").await,
        Scenario::HugeIdThenTinyEvents => {
            socket.write_all(SSE_HEAD).await?;
            socket.write_all(b"id: ").await?;
            fill(socket, b'7', 10 * 1024 * 1024).await?;
            socket.write_all(b"\n\n").await?;
            let mut batch = String::new();
            for n in 1..=10_000u64 {
                let _ = write!(batch, "data: {}\n\n", data_for(path, n));
                if batch.len() > 32 * 1024 {
                    socket.write_all(batch.as_bytes()).await?;
                    batch.clear();
                }
            }
            socket.write_all(batch.as_bytes()).await?;
            std::future::pending().await
        }
        Scenario::KibIdOnEveryEvent => {
            socket.write_all(SSE_HEAD).await?;
            let id = "i".repeat(1024);
            let mut batch = String::new();
            for n in 1..=10_000u64 {
                let _ = write!(batch, "id: {id}{n}\ndata: {}\n\n", data_for(path, n));
                if batch.len() > 32 * 1024 {
                    socket.write_all(batch.as_bytes()).await?;
                    batch.clear();
                }
            }
            socket.write_all(batch.as_bytes()).await?;
            std::future::pending().await
        }
        Scenario::HugeEventType => {
            socket.write_all(SSE_HEAD).await?;
            socket.write_all(b"event: ").await?;
            fill(socket, b't', 10 * 1024 * 1024).await?;
            socket.write_all(b"\ndata: 1\n\n").await?;
            socket.write_all(event_block(path, 2).as_bytes()).await?;
            std::future::pending().await
        }
        Scenario::EndlessLine => {
            socket.write_all(SSE_HEAD).await?;
            socket.write_all(b"data: ").await?;
            fill(socket, b'x', 16 * 1024 * 1024).await?;
            socket.write_all(b"\n\n").await?;
            socket.write_all(event_block(path, 2).as_bytes()).await?;
            std::future::pending().await
        }
        Scenario::CommentFlood => {
            socket.write_all(SSE_HEAD).await?;
            let batch = ": keep-alive\n".repeat(1000);
            for _ in 0..200 {
                socket.write_all(batch.as_bytes()).await?;
            }
            socket.write_all(event_block(path, 1).as_bytes()).await?;
            std::future::pending().await
        }
        Scenario::HugeComment => {
            socket.write_all(SSE_HEAD).await?;
            socket.write_all(b":").await?;
            fill(socket, b'c', 16 * 1024 * 1024).await?;
            socket.write_all(b"\n").await?;
            socket.write_all(event_block(path, 1).as_bytes()).await?;
            std::future::pending().await
        }
        Scenario::HugeEventData => {
            socket.write_all(SSE_HEAD).await?;
            let line = format!("data: {}\n", "d".repeat(1000));
            for _ in 0..(16 * 1024) {
                socket.write_all(line.as_bytes()).await?;
            }
            socket.write_all(b"\n").await?;
            socket.write_all(event_block(path, 2).as_bytes()).await?;
            std::future::pending().await
        }
        Scenario::EventFlood => {
            socket.write_all(SSE_HEAD).await?;
            let mut batch = String::new();
            for n in resume_from(head)..=100_000 {
                batch.push_str(&event_block(path, n));
                if batch.len() > 64 * 1024 {
                    socket.write_all(batch.as_bytes()).await?;
                    batch.clear();
                }
            }
            socket.write_all(batch.as_bytes()).await?;
            std::future::pending().await
        }
        Scenario::ContentLengthLie => {
            socket
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 10737418240\r\n\r\n",
                )
                .await?;
            socket
                .write_all(event_block(path, resume_from(head)).as_bytes())
                .await
        }
        Scenario::BrokenChunked => {
            socket
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
                )
                .await?;
            chunk(socket, event_block(path, resume_from(head)).as_bytes()).await?;
            socket.write_all(b"zz-not-hex\r\ndata: 2\n\n\r\n").await?;
            std::future::pending().await
        }
        Scenario::GzipBody | Scenario::GzipBomb => {
            socket
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-encoding: gzip\r\nconnection: close\r\n\r\n",
                )
                .await?;
            let member = gzip_of_zeros(if shared.scenario == Scenario::GzipBomb {
                10 * 1024 * 1024
            } else {
                4096
            });
            let times = if shared.scenario == Scenario::GzipBomb {
                100
            } else {
                1
            };
            for _ in 0..times {
                socket.write_all(&member).await?;
            }
            Ok(())
        }
        Scenario::WrongContentType => {
            let body = "<html><body>data: 1\n\n</body></html>";
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            socket.write_all(head.as_bytes()).await?;
            socket.write_all(body.as_bytes()).await
        }
        Scenario::IdWithDel | Scenario::IdWithControlChars => {
            // Ids `N<bad>`; replays from the event after the one named by Last-Event-ID,
            // after percent-decoding, and from the start when it cannot tell.
            let bad: &[u8] = if shared.scenario == Scenario::IdWithDel {
                b"\x7f"
            } else {
                b"\x1b[31m\x07\x01"
            };
            let from = head
                .last_event_id()
                .map(|id| percent_decode(id.as_bytes()))
                .and_then(|id| {
                    let digits: Vec<u8> =
                        id.iter().copied().take_while(u8::is_ascii_digit).collect();
                    String::from_utf8(digits).ok()?.parse::<u64>().ok()
                })
                .map_or(1, |n| n + 1);
            socket.write_all(SSE_HEAD).await?;
            for n in from..from + 3 {
                let mut block = format!("id: {n}").into_bytes();
                block.extend_from_slice(bad);
                block.extend_from_slice(format!("\ndata: {}\n\n", data_for(path, n)).as_bytes());
                socket.write_all(&block).await?;
            }
            Ok(())
        }
        Scenario::IdWithNul => {
            socket.write_all(SSE_HEAD).await?;
            socket
                .write_all(b"id: 1\ndata: {\"seq\":1}\n\nid: 2\x00evil\ndata: {\"seq\":2}\n\nid: 3\ndata: {\"seq\":3}\n\n")
                .await
        }
        Scenario::InvalidUtf8Everywhere => {
            socket.write_all(SSE_HEAD).await?;
            socket
                .write_all(
                    b"id: 1\xff\xfe\nevent: al\xc3\x28arm\ndata: {\"v\":\"\xed\xa0\x80\"}\nd\xffta: ignored\n\nid: 2\ndata: {\"seq\":2}\n\n",
                )
                .await?;
            std::future::pending().await
        }
        Scenario::ControlCharsInData => {
            socket.write_all(SSE_HEAD).await?;
            socket
                .write_all(
                    b"id: 1\nevent: alarm\ndata: {\"msg\":\"\x1b[2J\x1b]0;pwned\x07\x08\x08\x08\"}\n\nid: 2\nevent: \x1b[31malarm\ndata: {\"seq\":2}\n\n",
                )
                .await?;
            std::future::pending().await
        }
        Scenario::PlainMessageEvents => {
            socket.write_all(SSE_HEAD).await?;
            for n in resume_from(head)..resume_from(head) + 5 {
                let block = format!("id: {n}\ndata: {}\n\n", data_for(path, n));
                socket.write_all(block.as_bytes()).await?;
            }
            std::future::pending().await
        }
        Scenario::ExtremeNumbers | Scenario::TdExtremeRange => {
            socket.write_all(SSE_HEAD).await?;
            let values = [
                "1e308",
                "-1e308",
                "1e400",
                "-0",
                "\"NaN\"",
                "123456789012345678901234567890",
                "4.9e-324",
            ];
            for (i, value) in values.iter().enumerate() {
                let block = format!("id: {}\nevent: temp\ndata: {value}\n\n", i + 1);
                socket.write_all(block.as_bytes()).await?;
            }
            let mut nested = "[".repeat(10_000);
            nested.push_str(&"]".repeat(10_000));
            socket
                .write_all(format!("id: 99\nevent: temp\ndata: {nested}\n\n").as_bytes())
                .await?;
            std::future::pending().await
        }
        Scenario::PatternUpdates => {
            socket.write_all(SSE_HEAD).await?;
            let mut batch = String::new();
            for n in 1..=10_000u64 {
                let _ = write!(batch, "id: {n}\nevent: temp\ndata: \"{}.5\"\n\n", n % 100);
                if batch.len() > 32 * 1024 {
                    socket.write_all(batch.as_bytes()).await?;
                    batch.clear();
                }
            }
            socket.write_all(batch.as_bytes()).await?;
            std::future::pending().await
        }
        Scenario::RedirectLoop => redirect(socket, path).await,
        Scenario::CrossOriginRedirectBearer
        | Scenario::CrossOriginRedirectHeaderKey
        | Scenario::CrossOriginRedirectQueryKey
        | Scenario::CrossOriginRedirectBasic
        | Scenario::CrossOriginRedirectBearerCustomHeader
        | Scenario::CrossOriginRedirectOneShot => {
            redirect(socket, &format!("{other}/collect")).await
        }
        // TD scenarios: a normal, finite stream.
        _ => {
            socket.write_all(SSE_HEAD).await?;
            for n in resume_from(head)..resume_from(head) + 3 {
                socket.write_all(event_block(path, n).as_bytes()).await?;
            }
            std::future::pending().await
        }
    }
}

/// Decodes `%XX` escapes; other bytes are kept.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&byte) = input.get(i) {
        let hex = input
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (byte, hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            _ => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// A gzip member whose deflate stream inflates to `len` zero bytes (at about 1:160): a
/// literal zero, then back-references of length 258 at distance 1 in fixed Huffman codes.
pub fn gzip_of_zeros(len: usize) -> Vec<u8> {
    let mut bits = BitWriter::default();
    bits.push(1, 1); // BFINAL
    bits.push(1, 2); // BTYPE = 01, fixed Huffman
    // Literal 0: fixed code 00110000 (8 bits), written most significant bit first.
    bits.push_code(0b0011_0000, 8);
    let mut left = len.saturating_sub(1);
    while left >= 258 {
        // Length 258: symbol 285, fixed code 11000101 (8 bits); distance 1: code 0 (5 bits).
        bits.push_code(0b1100_0101, 8);
        bits.push_code(0, 5);
        left -= 258;
    }
    for _ in 0..left {
        bits.push_code(0b0011_0000, 8);
    }
    bits.push_code(0, 7); // end of block: symbol 256, code 0000000
    let deflate = bits.finish();
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    out.extend_from_slice(&deflate);
    out.extend_from_slice(&crc32_of_zeros(len).to_le_bytes());
    out.extend_from_slice(&u32::try_from(len % (1 << 32)).unwrap_or(0).to_le_bytes());
    out
}

#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u32,
    count: u32,
}

impl BitWriter {
    /// Pushes `n` bits of `value`, least significant first (header fields, extra bits).
    fn push(&mut self, value: u32, n: u32) {
        for i in 0..n {
            self.acc |= ((value >> i) & 1) << self.count;
            self.count += 1;
            if self.count == 8 {
                self.out.push((self.acc & 0xff) as u8);
                self.acc = 0;
                self.count = 0;
            }
        }
    }

    /// Pushes an `n`-bit Huffman code, most significant bit first.
    fn push_code(&mut self, code: u32, n: u32) {
        for i in (0..n).rev() {
            self.push((code >> i) & 1, 1);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.count > 0 {
            self.out.push((self.acc & 0xff) as u8);
        }
        self.out
    }
}

/// The CRC-32 of `len` zero bytes.
fn crc32_of_zeros(len: usize) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for _ in 0..len {
        crc ^= 0;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_there_are_at_least_forty() {
        let mut names: Vec<String> = Scenario::ALL.iter().map(|s| s.name()).collect();
        assert!(names.len() >= 40, "{}", names.len());
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Scenario::ALL.len());
        assert_eq!(Scenario::RetryZeroStorm.name(), "retry_zero_storm");
    }

    #[test]
    fn basic_encoding_matches_rfc_4648() {
        // "user:s3cr3t-t0ken-do-not-leak"
        assert_eq!(basic_encoded(), "dXNlcjpzM2NyM3QtdDBrZW4tZG8tbm90LWxlYWs=");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode(b"12%7F"), b"12\x7f");
        assert_eq!(percent_decode(b"%zz%4"), b"%zz%4");
    }

    #[test]
    fn the_gzip_member_has_the_deflate_shape() {
        let member = gzip_of_zeros(1 << 20);
        assert_eq!(&member[..3], &[0x1f, 0x8b, 8]);
        // 13 bits per 258 bytes, the remainder (63 bytes here) as literals, 18 bytes of
        // header and trailer.
        assert!(member.len() < 6_700, "{}", member.len());
        assert_eq!(crc32_of_zeros(0), 0);
        assert_eq!(crc32_of_zeros(1), 0xD202_EF8D);
    }

    #[test]
    fn the_plain_td_is_json_with_the_forms_the_tests_use() {
        let td = Scenario::NoContent.td("http://127.0.0.1:1");
        let text = String::from_utf8(td).unwrap();
        assert!(text.contains(r#""href":"events/alarm""#));
        assert!(text.contains(r#""base":"http://127.0.0.1:1/""#));
    }
}
