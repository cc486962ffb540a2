//! Soak test for `wot-sse`: many concurrent streams from one process against a local SSE server
//! that injects faults, for a set time.
//!
//! The server (in this process, on 127.0.0.1) numbers the events of each stream 1, 2, 3, …,
//! replays from `Last-Event-ID`, and at random (seeded) answers 503 with `Retry-After` or 500,
//! cuts connections in the middle of an event, or stalls until the client's idle timeout.
//! Each consumer checks that every event arrives exactly once, whole and in order.
//!
//! At the end it prints events per second, reconnects, events lost (must be 0), duplicates,
//! and the resident memory (VmRSS) at the start, after the warm-up and at the end. It exits
//! with status 1 if any event was lost, duplicated or damaged.
//!
//! ```text
//! cargo run --release -p soak -- --duration 3m --streams 1000
//! ```
//!
//! Each stream needs two file descriptors (client and server side): raise `ulimit -n` above
//! twice the number of streams. Not run in CI.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use clap::Parser;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, sleep};
use wot_sse::{ReconnectPolicy, SseClient};

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "Soak test: concurrent wot-sse streams against a local faulty server")]
struct Args {
    /// How long to run, e.g. `90s` or `5m`.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Concurrent streams.
    #[arg(long, default_value_t = 1000)]
    streams: u64,
    /// Time between two events of one stream, in milliseconds.
    #[arg(long, default_value_t = 50)]
    interval_ms: u64,
    /// Per mille of events at which the server cuts the connection in the middle of the event.
    #[arg(long, default_value_t = 2)]
    cut_per_mille: u64,
    /// Per mille of events after which the server stalls until the client's idle timeout.
    #[arg(long, default_value_t = 1)]
    stall_per_mille: u64,
    /// Per mille of connections answered 503 with `Retry-After: 1`, and as many 500.
    #[arg(long, default_value_t = 20)]
    error_per_mille: u64,
    /// Time before the memory after warm-up is taken.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Inject no faults at all.
    #[arg(long)]
    no_faults: bool,
}

/// Counters shared by server and consumers.
#[derive(Default)]
struct Stats {
    events: AtomicU64,
    /// Errors the streams reported (each is a dropped connection or a failed attempt).
    reconnects: AtomicU64,
    /// Events skipped over: an id larger than the last one plus one.
    lost: AtomicU64,
    /// Events seen again or out of order: an id not larger than the last one.
    duplicates: AtomicU64,
    /// Events whose data is not what the server sent for their id.
    damaged: AtomicU64,
    connections: AtomicU64,
    cuts: AtomicU64,
    stalls: AtomicU64,
    status_errors: AtomicU64,
}

/// A small deterministic generator (xorshift64*), so fault runs can be repeated.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn per_mille(&mut self, chance: u64) -> bool {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % 1000 < chance
    }
}

fn event_data(stream: u64, n: u64) -> String {
    format!(
        "{{\"stream\":{stream},\"seq\":{n},\"value\":{}}}",
        (stream * 31 + n) % 1000
    )
}

/// VmRSS of this process in KiB, from /proc/self/status.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("VmRSS:")?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

#[derive(Clone, Copy)]
struct Faults {
    cut: u64,
    stall: u64,
    error: u64,
}

async fn run_server(listener: TcpListener, stats: Arc<Stats>, faults: Faults, interval: Duration) {
    let mut accepted = 0u64;
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        accepted += 1;
        stats.connections.fetch_add(1, Ordering::Relaxed);
        let stats = stats.clone();
        tokio::spawn(serve(socket, stats, faults, interval, accepted));
    }
}

/// Reads the request head; returns the stream number from the path and the `Last-Event-ID`.
async fn read_request(socket: &mut TcpStream) -> Option<(u64, u64)> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 || head.len() > 16 * 1024 {
            return None;
        }
        head.extend_from_slice(buf.get(..n)?);
    }
    let text = String::from_utf8_lossy(&head);
    let path = text.lines().next()?.split(' ').nth(1)?;
    let stream = path.strip_prefix("/streams/")?.parse().ok()?;
    let last = text
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("last-event-id")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    Some((stream, last))
}

async fn serve(
    mut socket: TcpStream,
    stats: Arc<Stats>,
    faults: Faults,
    interval: Duration,
    seed: u64,
) {
    let Some((stream, last)) = read_request(&mut socket).await else {
        return;
    };
    let mut rng = Rng::new(seed ^ (stream << 32));
    if rng.per_mille(faults.error) {
        stats.status_errors.fetch_add(1, Ordering::Relaxed);
        let _ = socket
            .write_all(b"HTTP/1.1 503 Busy\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
        return;
    }
    if rng.per_mille(faults.error) {
        stats.status_errors.fetch_add(1, Ordering::Relaxed);
        let _ = socket
            .write_all(b"HTTP/1.1 500 Oops\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
        return;
    }
    let head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
                 transfer-encoding: chunked\r\n\r\n";
    if socket.write_all(head).await.is_err() {
        return;
    }
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in last + 1.. {
        ticker.tick().await;
        let text = format!("id: {n}\ndata: {}\n\n", event_data(stream, n));
        let frame = format!("{:x}\r\n{text}\r\n", text.len());
        if rng.per_mille(faults.cut) {
            // Half of the event, then an abrupt end: the client must drop the half.
            stats.cuts.fetch_add(1, Ordering::Relaxed);
            let half = frame.len() / 2;
            let _ = socket
                .write_all(frame.as_bytes().get(..half).unwrap_or_default())
                .await;
            return;
        }
        if socket.write_all(frame.as_bytes()).await.is_err() {
            return;
        }
        if rng.per_mille(faults.stall) {
            // Say nothing more; the client's idle timeout must notice.
            stats.stalls.fetch_add(1, Ordering::Relaxed);
            let mut buf = [0u8; 64];
            while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
            return;
        }
    }
}

async fn consume(
    client: SseClient,
    addr: SocketAddr,
    stream: u64,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
) {
    let connected = client
        .get(format!("http://{addr}/streams/{stream}"))
        .connect();
    let mut events = match connected {
        Ok(events) => events,
        Err(error) => {
            eprintln!("stream {stream}: {error}");
            return;
        }
    };
    let mut last = 0u64;
    while let Some(item) = events.next().await {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        match item {
            Ok(event) => {
                let id: u64 = event.id().parse().unwrap_or(0);
                if id > last + 1 {
                    stats.lost.fetch_add(id - last - 1, Ordering::Relaxed);
                }
                if id <= last {
                    stats.duplicates.fetch_add(1, Ordering::Relaxed);
                } else {
                    last = id;
                }
                if event.data() != event_data(stream, id) {
                    stats.damaged.fetch_add(1, Ordering::Relaxed);
                }
                stats.events.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) if error.is_terminal() => {
                eprintln!("stream {stream} ended: {error}");
                return;
            }
            Err(_) => {
                stats.reconnects.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let stats = Arc::new(Stats::default());
    let faults = if args.no_faults {
        Faults {
            cut: 0,
            stall: 0,
            error: 0,
        }
    } else {
        Faults {
            cut: args.cut_per_mille,
            stall: args.stall_per_mille,
            error: args.error_per_mille,
        }
    };
    let interval = Duration::from_millis(args.interval_ms.max(1));
    let rss_start = rss_kib();

    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen on 127.0.0.1: {error}");
            std::process::exit(2);
        }
    };
    let Ok(addr) = listener.local_addr() else {
        std::process::exit(2);
    };
    let server = tokio::spawn(run_server(listener, stats.clone(), faults, interval));

    let client = match SseClient::builder()
        .idle_timeout(Duration::from_secs(3))
        .reconnect(
            ReconnectPolicy::new()
                .initial_delay(Duration::from_millis(200))
                .max_delay(Duration::from_secs(2))
                .max_attempts(None),
        )
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let consumers: Vec<_> = (0..args.streams)
        .map(|stream| {
            tokio::spawn(consume(
                client.clone(),
                addr,
                stream,
                stats.clone(),
                stop.clone(),
            ))
        })
        .collect();

    let started = Instant::now();
    let mut rss_warm = None;
    let mut last_events = 0;
    while started.elapsed() < args.duration {
        sleep(Duration::from_secs(10).min(args.duration)).await;
        if rss_warm.is_none() && started.elapsed() >= args.warmup {
            rss_warm = Some(rss_kib());
        }
        let events = stats.events.load(Ordering::Relaxed);
        println!(
            "{:>5.0}s  events {events} (+{}/s)  reconnects {}  lost {}  rss {} KiB",
            started.elapsed().as_secs_f64(),
            (events - last_events) / 10,
            stats.reconnects.load(Ordering::Relaxed),
            stats.lost.load(Ordering::Relaxed),
            rss_kib(),
        );
        last_events = events;
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let rss_end = rss_kib();
    for consumer in consumers {
        consumer.abort();
    }
    server.abort();

    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let events = get(&stats.events);
    let lost = get(&stats.lost);
    let duplicates = get(&stats.duplicates);
    let damaged = get(&stats.damaged);
    println!("streams            {}", args.streams);
    println!("duration           {elapsed:.0} s");
    println!("events             {events}");
    println!("events/s           {:.0}", events as f64 / elapsed);
    println!("reconnects         {}", get(&stats.reconnects));
    println!("  connections      {}", get(&stats.connections));
    println!("  cuts mid-event   {}", get(&stats.cuts));
    println!("  stalls           {}", get(&stats.stalls));
    println!("  500/503 answers  {}", get(&stats.status_errors));
    println!("events lost        {lost}");
    println!("duplicates         {duplicates}");
    println!("damaged events     {damaged}");
    println!("rss start          {rss_start} KiB");
    println!("rss after warm-up  {} KiB", rss_warm.unwrap_or(0));
    println!("rss end            {rss_end} KiB");
    if lost > 0 || duplicates > 0 || damaged > 0 {
        std::process::exit(1);
    }
}
