//! `sse-contract-service`: lets an external SSE client test harness drive `wot-sse` over HTTP.
//!
//! ```text
//! cargo run -p sse-contract-service -- --port 8000
//! ```
//!
//! Logs go to stderr; set `RUST_LOG` (e.g. `RUST_LOG=debug`) for more. `DELETE /` stops it.

use std::io::IsTerminal;
use std::net::{Ipv4Addr, SocketAddr};

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Contract-test service for the wot-sse client.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The port to listen on (on 127.0.0.1).
    #[arg(long, default_value_t = 8000)]
    port: u16,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // A harness may stop reading our stderr; the default would then panic on every log.
        .log_internal_errors(false)
        .init();
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let listener = tokio::net::TcpListener::bind(address).await?;
    tracing::info!(%address, "sse-contract-service listening");
    sse_contract_service::run(listener).await?;
    tracing::info!("stopped");
    Ok(())
}
