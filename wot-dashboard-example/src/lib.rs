//! The wot-live dashboard example: a terminal dashboard for W3C WoT Things, composed from
//! `wot-td`, `wot-sse` (through `wot-events`), `wot-events` and `wot-alerts`, with an embedded
//! simulator so that `cargo run -p wot-dashboard-example` shows live data with no setup.
//!
//! [`run`] validates the options, opens the state directory (`persist`, `--state`), starts
//! the simulator if needed, loads the Things and opens the live streams (`live`, resumed from
//! the state directory and saved to it before anything is shown), and hands them to the
//! terminal shell (`tui`), the JSON printer (`headless`) or the web server ([`web`], `--web`,
//! which can run beside `--headless`). The terminal state is [`app::App`];
//! drawing is [`ui::draw`], a pure function of it (public so that it can be fuzzed). Remote
//! text goes through [`sanitize`] before it reaches a terminal. See `docs/dashboard.md`.
//!
//! The same program is a fleet member on NATS JetStream (`wot-nats`): with `--collect` it
//! runs a collector instead of a front end, and with `--source` the front ends read the
//! records from the JetStream stream instead of from the Things. The simulator serves a fleet
//! of up to 10,000 Things with `--things N`.

pub mod app;
pub mod cli;
mod headless;
pub mod history;
mod live;
mod nats;
mod persist;
pub mod sanitize;
mod sim;
mod tui;
pub mod ui;
pub mod web;

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use cli::{Options, OptionsError};
pub use live::SetupError;
pub use nats::{CollectorLine, NatsError};
pub use persist::StateError;
pub use sim::SimError;
use sim::{SimConfig, Simulator};

/// Why the dashboard stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The options cannot work.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// The simulator could not start, or one of its tasks ended.
    #[error(transparent)]
    Simulator(#[from] SimError),
    /// The Things could not be loaded or watched, or the rules are invalid.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// `--duration` ran out or Ctrl-C came before the Thing Descriptions loaded.
    #[error("{why} before the Thing Descriptions loaded{}", waiting_for(.waiting))]
    StoppedWhileLoading {
        /// What stopped it.
        why: String,
        /// The URL being fetched then, if any.
        waiting: Option<String>,
    },
    /// The terminal failed.
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
    /// The web server could not start.
    #[error(transparent)]
    Web(#[from] web::WebError),
    /// The state directory (`--state`) cannot be used.
    #[error(transparent)]
    State(#[from] StateError),
    /// `--collect` or `--source` could not start on NATS.
    #[error(transparent)]
    Nats(#[from] NatsError),
}

fn waiting_for(url: &Option<String>) -> String {
    url.as_ref()
        .map(|url| format!("; still waiting for {url}"))
        .unwrap_or_default()
}

/// What ends a run besides its own end.
enum Halt {
    /// `--duration` ran out.
    Deadline(Duration),
    /// Ctrl-C (as a signal: in the TUI, raw mode turns it into a key instead).
    Interrupted,
    /// A background task failed.
    Failed(SimError),
}

impl Halt {
    /// A deadline or Ctrl-C is a normal end; a failed task is an error.
    fn into_result(self) -> Result<(), RunError> {
        match self {
            Halt::Deadline(_) | Halt::Interrupted => Ok(()),
            Halt::Failed(error) => Err(error.into()),
        }
    }
}

/// Completes after `duration`, on Ctrl-C, or when a simulator task fails, whichever comes
/// first. Created at start, so each works from the first moment.
async fn halt(duration: Option<Duration>, simulator: Option<&mut Simulator>) -> Halt {
    let deadline = async {
        match duration {
            Some(duration) => {
                tokio::time::sleep(duration).await;
                Halt::Deadline(duration)
            }
            None => std::future::pending().await,
        }
    };
    let interrupted = async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => Halt::Interrupted,
            Err(_) => std::future::pending().await,
        }
    };
    let failed = async {
        match simulator {
            Some(simulator) => Halt::Failed(simulator.failure().await),
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        halt = deadline => halt,
        halt = interrupted => halt,
        halt = failed => halt,
    }
}

/// Runs the dashboard with these options until `q`, Ctrl-C, `--duration` or the end of
/// every stream. With `--web` it serves the dashboard as a web page instead (see [`web`]).
///
/// `--duration` and Ctrl-C work from the start: while the Thing Descriptions load they end
/// the run with [`RunError::StoppedWhileLoading`]; after that they end it normally. Each TD
/// fetch is bounded by `--td-timeout`.
///
/// # Errors
/// Invalid options, a simulator that cannot start or whose task fails, Things that cannot be
/// loaded or watched, invalid rules, a terminal error, a web address that cannot be listened
/// on, or a stop before the TDs loaded.
pub async fn run(options: Options) -> Result<(), RunError> {
    options.validate()?;
    // Opened first: a state directory that cannot be used stops the start at once. Opening
    // verifies the whole file: on a blocking thread, not a runtime worker.
    let state = match options.state_dir().filter(|_| !options.serve_only) {
        Some(dir) => {
            let output = options.output.clone();
            Some(persist::blocking(move || persist::State::open(&dir, output.as_deref())).await?)
        }
        None => None,
    };
    let mut simulator = if options.simulated() {
        let config = SimConfig {
            seed: options.seed,
            tick: options.sim_tick,
            chaos: options.chaos,
            chaos_rate: options.chaos_rate,
            things: options.sim_things,
            ..SimConfig::default()
        };
        Some(Simulator::start(config).await?)
    } else {
        None
    };
    let base = simulator.as_ref().map(Simulator::base_url);
    if options.serve_only
        && let Some(simulator) = &simulator
    {
        print!("{}", simulator.urls_text());
    }
    let mut halt = std::pin::pin!(halt(options.duration, simulator.as_mut()));
    if options.serve_only {
        return halt.await.into_result();
    }
    let waiting = Mutex::new(None);
    let things = tokio::select! {
        things = live::load_things(&options, base.as_deref(), &waiting) => things?,
        stop = &mut halt => {
            let why = match stop {
                Halt::Deadline(d) => format!("--duration {} ran out", humantime::format_duration(d)),
                Halt::Interrupted => "interrupted".to_owned(),
                Halt::Failed(error) => return Err(error.into()),
            };
            return Err(RunError::StoppedWhileLoading { why, waiting: waiting.lock().unwrap_or_else(PoisonError::into_inner).take() });
        }
    };
    if let Some(url) = options.collect.clone() {
        let halt = nats::collect(&options, &url, things, &mut halt).await?;
        return halt.map_or(Ok(()), Halt::into_result);
    }
    let rules = live::rules(&options)?;
    // Reading the history is file work too: on a blocking thread.
    let state = match state {
        Some(mut state) => {
            let limits = restore_limits(&options, &things);
            Some(persist::blocking(move || state.load_history(&limits).map(|()| state)).await?)
        }
        None => None,
    };
    let from_nats = match &options.source {
        Some(url) => Some(nats::source(&options, url).await?),
        None => None,
    };
    if options.web.is_some() {
        let live = live::start(&options, &things, rules.clone(), state, from_nats).await?;
        let printer = live.printer.clone();
        let halt = web::run(live, &things, &rules, &options, &mut halt).await?;
        printer.written()?;
        return halt.map_or(Ok(()), Halt::into_result);
    }
    let live = live::start(&options, &things, rules, state, from_nats).await?;
    if options.headless {
        let printer = live.printer.clone();
        let halt = headless::run(live, &mut halt).await;
        printer.written()?;
        return halt.map_or(Ok(()), Halt::into_result);
    }
    let views = things
        .iter()
        .map(|t| app::ThingView::from_td(t.thing()))
        .collect();
    // `try_init` installs a panic hook that restores the terminal before the panic message.
    let mut terminal = ratatui::try_init()?;
    let result = tui::run(&mut terminal, live, views, options.limits(), &mut halt).await;
    ratatui::restore();
    match result? {
        Some(stop) => stop.into_result(),
        None => Ok(()),
    }
}

/// How much history a restart shows again: the last hour, as much as the event log and the
/// charts of the chosen front end keep (the chart budget shared by the properties of
/// `things`), so that a restore holds no more in memory than the front end will.
fn restore_limits(
    options: &Options,
    things: &[wot_events::ConsumedThing],
) -> wot_store::RestoreLimits {
    let properties: usize = things.iter().map(|t| t.thing().properties().count()).sum();
    let (per_property, budget) = if options.web.is_some() {
        let limits = web::WebLimits::from_options(options);
        (limits.history_values, limits.history_bytes)
    } else {
        let limits = options.limits();
        (limits.history_values, limits.history_bytes)
    };
    let shared = budget / history::Samples::VALUE_BYTES / properties.max(1);
    wot_store::RestoreLimits::new()
        .since(Duration::from_secs(3600))
        .events(options.log_entries)
        .properties(properties.max(1))
        .per_property(per_property.min(shared).max(1))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn a_run_can_be_spawned_on_any_runtime_thread() {
        fn is_send<T: Send>(_: &T) {}
        let run = run(Options::parse_from(["dash"]));
        is_send(&run);
    }
}
