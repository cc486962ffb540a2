//! The wot-live dashboard example: a terminal dashboard for W3C WoT Things. The program is
//! the library's [`wot_dashboard_example::run`]; see `docs/dashboard.md`.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use wot_dashboard_example::cli::Options;
use wot_dashboard_example::sanitize;

#[tokio::main]
async fn main() -> ExitCode {
    let options = Options::parse();
    if options.headless || options.serve_only || options.web.is_some() || options.collect.is_some()
    {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            // Colours only for a terminal: a log file or pipe gets no escape sequences.
            .with_ansi(std::io::stderr().is_terminal())
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .init();
    }
    match wot_dashboard_example::run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Errors quote remote text (TD titles, server messages): escape it.
            eprintln!("error: {}", sanitize::text(&error.to_string()));
            ExitCode::FAILURE
        }
    }
}
