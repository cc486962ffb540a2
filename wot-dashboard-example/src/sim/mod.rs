//! The embedded simulator: four believable Things (or a fleet of up to [`MAX_THINGS`]
//! copies of them, `--things N`) behind a WoT Profile server on 127.0.0.1.
//!
//! [`model`] holds the devices (no I/O, seeded), [`hub`] the per-Thing record log with replay,
//! [`server`] the axum routes, [`tds`] the Thing Descriptions. [`Simulator::start`] binds a free
//! port and runs two tasks, the ticker that steps the world (one task for the whole fleet) and
//! the HTTP server; both stop when
//! the [`Simulator`] is dropped. Neither ends on its own: [`Simulator::failure`] completes when
//! one does (a panic, a server error), so that the program can fail instead of showing data
//! that no longer changes.

mod hub;
pub(crate) mod model;
mod server;
pub(crate) mod tds;
#[cfg(test)]
mod tests;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::task::JoinHandle;

use hub::ThingLog;
use model::{Emission, THINGS, World};

/// Things a simulator serves unless told otherwise: the four of [`THINGS`].
pub(crate) const DEFAULT_THINGS: usize = THINGS.len();

/// Most Things a simulator serves (`--things`).
pub(crate) const MAX_THINGS: usize = 10_000;

/// Records kept for replay for all Things together, when a fleet is large enough that
/// [`SimConfig::replay`] per Thing would be more: each Thing then keeps this share, at least
/// [`MIN_REPLAY`]. (4,096 records of 10,000 Things would be about 4 GiB.)
pub(crate) const REPLAY_BUDGET: usize = 1 << 20;

/// The fewest records kept per Thing for replay in a large fleet: 256, a minute or more of
/// one Thing's records at the default tick.
pub(crate) const MIN_REPLAY: usize = 256;

/// How the simulator behaves.
#[derive(Debug, Clone)]
pub(crate) struct SimConfig {
    /// Seed of every random choice (values, excursions, chaos). Default 1.
    pub(crate) seed: u64,
    /// Time between two steps of the world. Default 500 ms.
    pub(crate) tick: Duration,
    /// Cut SSE connections and refuse some at random. Default off.
    pub(crate) chaos: bool,
    /// With `chaos`: the chance that a connection is cut in the middle of each record sent.
    /// Must be from 0 to 1. Default 0.04.
    pub(crate) chaos_rate: f64,
    /// Longest quiet time on an SSE stream before a heartbeat comment. Default 5 s.
    pub(crate) heartbeat: Duration,
    /// Records kept per Thing for `Last-Event-ID` replay. Default 4096; in a fleet, at most
    /// an even share of [`REPLAY_BUDGET`] (at least [`MIN_REPLAY`]).
    pub(crate) replay: usize,
    /// How many Things: the four of [`THINGS`], or a fleet cycling through them. From 1 to
    /// [`MAX_THINGS`]. Default 4.
    pub(crate) things: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            tick: Duration::from_millis(500),
            chaos: false,
            chaos_rate: 0.04,
            heartbeat: Duration::from_secs(5),
            replay: 4096,
            things: DEFAULT_THINGS,
        }
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// No port on 127.0.0.1 could be bound.
    #[error("cannot listen on 127.0.0.1: {0}")]
    Bind(#[from] io::Error),
    /// A setting that cannot work (a zero tick, a chance outside 0 to 1).
    #[error("invalid simulator setting: {0}")]
    Config(&'static str),
    /// A simulator task ended (it never should): which, and why.
    #[error("the simulator {task} stopped: {reason}")]
    Stopped {
        /// `ticker` or `server`.
        task: &'static str,
        /// The panic message, or how it ended.
        reason: String,
    },
    /// A simulated TD does not validate (a bug in the device specs).
    #[error("the TD of simulated Thing {slug} is invalid: {source}")]
    Td {
        /// Which Thing.
        slug: String,
        /// The validation errors.
        source: wot_td::BuildError,
    },
}

/// State shared by the ticker and the request handlers.
pub(crate) struct Shared {
    world: Mutex<World>,
    logs: Vec<ThingLog>,
    /// The directory listing, a JSON array of every TD, serialized once.
    directory: bytes::Bytes,
    /// Where each Thing's TD is in `directory`.
    tds: Vec<std::ops::Range<usize>>,
    config: SimConfig,
    /// Counts SSE connections; seeds each one's chaos.
    connections: AtomicU64,
}

impl Shared {
    fn lock_world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Aborts a task when dropped, so no simulator task outlives the simulator.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A running simulator.
pub(crate) struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    ticker: AbortOnDrop,
    server: AbortOnDrop,
}

/// Longest heartbeat period accepted (one day).
const MAX_HEARTBEAT: Duration = Duration::from_secs(24 * 3600);

impl SimConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// A zero tick or heartbeat, a heartbeat over a day, a chaos rate outside 0 to 1.
    pub(crate) fn validate(&self) -> Result<(), SimError> {
        if self.tick.is_zero() {
            return Err(SimError::Config("the tick must be more than zero"));
        }
        if self.heartbeat.is_zero() || self.heartbeat > MAX_HEARTBEAT {
            return Err(SimError::Config(
                "the heartbeat must be more than zero and at most a day",
            ));
        }
        if !(0.0..=1.0).contains(&self.chaos_rate) {
            return Err(SimError::Config("the chaos rate must be from 0 to 1"));
        }
        if !(1..=MAX_THINGS).contains(&self.things) {
            return Err(SimError::Config(
                "the number of Things must be from 1 to 10000",
            ));
        }
        if self.replay == 0 {
            return Err(SimError::Config(
                "the replay buffer must hold at least one record",
            ));
        }
        Ok(())
    }
}

/// Why a task that should run forever ended.
fn end_reason(result: Result<(), tokio::task::JoinError>) -> String {
    match result {
        Ok(()) => "it returned".to_owned(),
        Err(error) if error.is_panic() => {
            let payload = error.into_panic();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned());
            format!("panicked: {message}")
        }
        Err(_) => "it was cancelled".to_owned(),
    }
}

impl Simulator {
    /// Binds 127.0.0.1 on a free port and starts serving.
    ///
    /// # Errors
    /// When the port cannot be bound or a TD does not validate.
    pub(crate) async fn start(config: SimConfig) -> Result<Self, SimError> {
        config.validate()?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let base = format!("http://{addr}/");
        let world = World::fleet(config.seed, config.things);
        let replay = config
            .replay
            .min((REPLAY_BUDGET / config.things).max(MIN_REPLAY));
        let logs: Vec<ThingLog> = (0..config.things).map(|_| ThingLog::new(replay)).collect();
        let mut directory = Vec::with_capacity(config.things * 4096);
        let mut tds = Vec::with_capacity(config.things);
        directory.push(b'[');
        for index in 0..config.things {
            let td = tds::thing_description_at(index, &base).map_err(|source| SimError::Td {
                slug: model::slug(index),
                source,
            })?;
            if index > 0 {
                directory.push(b',');
            }
            let start = directory.len();
            // A `Thing` is plain data with string keys; this cannot fail.
            let _ = serde_json::to_writer(&mut directory, &td);
            tds.push(start..directory.len());
        }
        directory.push(b']');
        let shared = Arc::new(Shared {
            world: Mutex::new(world),
            logs,
            directory: directory.into(),
            tds,
            config,
            connections: AtomicU64::new(0),
        });
        {
            // Publish the starting values, so the first observers see every property at once.
            let world = shared.lock_world();
            for index in 0..world.len() {
                for (name, value) in world.properties(index) {
                    shared.publish(index, &Emission::Property { name, value });
                }
            }
        }
        let ticker = tokio::spawn(tick(Arc::clone(&shared)));
        let app = server::router(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "simulator server stopped");
            }
        });
        Ok(Simulator {
            addr,
            shared,
            ticker: AbortOnDrop(ticker),
            server: AbortOnDrop(server),
        })
    }

    /// Completes when a simulator task ends (which it never should): with which, and why.
    /// Call it once: it must not be polled again after it completed.
    pub(crate) async fn failure(&mut self) -> SimError {
        let (task, result) = tokio::select! {
            result = &mut self.ticker.0 => ("ticker", result),
            result = &mut self.server.0 => ("server", result),
        };
        SimError::Stopped {
            task,
            reason: end_reason(result),
        }
    }

    /// `http://127.0.0.1:PORT/`.
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The Thing Description Directory listing (`GET` gives a JSON array of TDs).
    pub(crate) fn directory_url(&self) -> String {
        format!("{}things", self.base_url())
    }

    /// How many SSE connections clients have opened so far (refused ones included).
    #[cfg(test)]
    pub(crate) fn connections(&self) -> u64 {
        self.shared
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// What `--serve-only` prints, one URL a line: the directory, each Thing's TD, then the
    /// Server-Sent Events streams of each Thing (all its properties, all its events) that
    /// `sse-cat` and other SSE clients can read directly.
    pub(crate) fn urls_text(&self) -> String {
        let base = self.base_url();
        let mut text = format!(
            "directory: {base} (for --directory; GET {} lists every TD)\n",
            self.directory_url()
        );
        // A fleet lists its first four Things; the directory lists them all.
        let count = self.shared.config.things;
        let shown = count.min(THINGS.len());
        for url in self.thing_urls().into_iter().take(shown) {
            text.push_str(&format!("thing:     {url}\n"));
        }
        for index in 0..shown {
            let slug = model::slug(index);
            text.push_str(&format!(
                "sse:       {base}things/{slug}/sse/properties (every property of {slug})\n\
                 sse:       {base}things/{slug}/sse/events (every event of {slug})\n"
            ));
        }
        if count > shown {
            text.push_str(&format!(
                "things:    {count} (the others are {base}things/fridge-2 to {base}things/{}; \
                 the directory lists every one)\n",
                model::slug(count - 1)
            ));
        }
        if shown > 1 {
            text.push_str(&format!(
                "e.g.       cargo run -p wot-sse --example sse-cat -- {base}things/{}/sse/events\n",
                model::slug(1)
            ));
        }
        text
    }

    /// The URL of each simulated Thing's TD.
    pub(crate) fn thing_urls(&self) -> Vec<String> {
        let base = self.base_url();
        (0..self.shared.config.things)
            .map(|index| format!("{base}things/{}", model::slug(index)))
            .collect()
    }
}

async fn tick(shared: Arc<Shared>) {
    let mut interval = tokio::time::interval(shared.config.tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        interval.tick().await;
        let mut world = shared.lock_world();
        // Publishing under the world lock keeps the log in the order the world changed.
        for (index, emission) in world.step() {
            shared.publish(index, &emission);
        }
    }
}
