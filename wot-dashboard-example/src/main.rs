//! The wot-live dashboard example: a terminal dashboard for W3C WoT Things, composed from
//! `wot-td`, `wot-sse` (through `wot-events`), `wot-events` and `wot-alerts`, with an embedded
//! simulator so that `cargo run -p wot-dashboard-example` shows live data with no setup.
//!
//! `main` only parses options, starts the simulator if needed, opens the live streams
//! ([`live`]) and hands them to the terminal shell ([`tui`]) or the JSON printer
//! ([`headless`]). The state is [`app::App`]; drawing is [`ui::draw`]. See
//! `docs/dashboard.md`.

mod app;
mod cli;
mod headless;
mod live;
mod sim;
mod tui;
mod ui;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use cli::Options;
use sim::{SimConfig, Simulator};

/// Completes after `duration`, or never.
async fn deadline(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}

/// Completes on Ctrl-C (as a signal: in the TUI, raw mode turns it into a key instead).
async fn interrupted() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = Options::parse();
    if options.headless || options.serve_only {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .init();
    }
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), Box<dyn std::error::Error>> {
    let simulator = if options.simulated() {
        let config = SimConfig {
            seed: options.seed,
            tick: options.sim_tick,
            chaos: options.chaos,
            chaos_rate: options.chaos_rate,
            ..SimConfig::default()
        };
        Some(Simulator::start(config).await?)
    } else {
        None
    };
    let stop = async {
        tokio::select! {
            () = deadline(options.duration) => {}
            () = interrupted() => {}
        }
    };
    if options.serve_only {
        let Some(simulator) = &simulator else {
            return Err(
                "--serve-only runs the simulator; leave out --thing and --directory".into(),
            );
        };
        println!(
            "directory: {} (for --directory; GET {} lists every TD)",
            simulator.base_url(),
            simulator.directory_url()
        );
        for url in simulator.thing_urls() {
            println!("thing:     {url}");
        }
        stop.await;
        return Ok(());
    }
    let base = simulator.as_ref().map(Simulator::base_url);
    let things = live::load_things(&options, base.as_deref()).await?;
    let rules = live::rules(&options)?;
    let live = live::start(&options, &things, rules)?;
    if options.headless {
        headless::run(live, stop).await;
        return Ok(());
    }
    let views = things
        .iter()
        .map(|t| app::ThingView::from_td(t.thing()))
        .collect();
    // `try_init` installs a panic hook that restores the terminal before the panic message.
    let mut terminal = ratatui::try_init()?;
    let result = tui::run(&mut terminal, live, views, stop).await;
    ratatui::restore();
    Ok(result?)
}
