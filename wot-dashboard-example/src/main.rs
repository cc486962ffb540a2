//! The wot-live dashboard example: a terminal dashboard for W3C WoT Things with an embedded
//! simulator. See `docs/dashboard.md`.

mod sim;

use sim::{SimConfig, Simulator};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let simulator = Simulator::start(SimConfig::default()).await?;
    println!("directory: {}", simulator.directory_url());
    for url in simulator.thing_urls() {
        println!("thing: {url}");
    }
    tokio::signal::ctrl_c().await?;
    Ok(())
}
