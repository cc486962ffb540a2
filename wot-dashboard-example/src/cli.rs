//! Command-line options.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// A live terminal dashboard for W3C Web of Things devices.
///
/// With no `--thing` or `--directory` it starts an embedded simulator of four Things and
/// watches those.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub(crate) struct Options {
    /// URL of a Thing Description to monitor (repeatable); replaces the simulator.
    #[arg(long = "thing", value_name = "URL")]
    pub(crate) things: Vec<String>,

    /// Base URL of a Thing Description Directory (`GET {URL}/things` lists TDs); replaces the
    /// simulator.
    #[arg(long, value_name = "URL")]
    pub(crate) directory: Option<String>,

    /// Alert rules file (YAML, TOML or JSON, the wot-alerts format). Default: the rules
    /// bundled for the simulator, or none for real Things.
    #[arg(long, value_name = "FILE")]
    pub(crate) rules: Option<PathBuf>,

    /// Bearer token for Things whose TD asks for `bearer` security.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "WOT_BEARER_TOKEN",
        hide_env_values = true
    )]
    pub(crate) bearer_token: Option<String>,

    /// `USER:PASSWORD` for Things whose TD asks for `basic` security.
    #[arg(
        long,
        value_name = "USER:PASSWORD",
        env = "WOT_BASIC_AUTH",
        hide_env_values = true
    )]
    pub(crate) basic_auth: Option<String>,

    /// Print property updates, events and alert notifications as JSON lines instead of
    /// drawing.
    #[arg(long)]
    pub(crate) headless: bool,

    /// Stop after this long (e.g. `30s`, `5m`).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) duration: Option<Duration>,

    /// Seed of the simulator: the same seed gives the same run.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,

    /// Make the simulator drop and refuse connections at random, to watch reconnect and
    /// resume at work.
    #[arg(long)]
    pub(crate) chaos: bool,

    /// With `--chaos`: the chance (0 to 1) that the simulator cuts a connection in the middle
    /// of each record it sends. Refusals stay at 8 % of connections.
    #[arg(long, value_name = "P", default_value_t = 0.04, requires = "chaos", value_parser = probability)]
    pub(crate) chaos_rate: f64,

    /// Run only the simulator and print its URLs.
    #[arg(long)]
    pub(crate) serve_only: bool,

    /// Time between two simulator steps.
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = humantime::parse_duration)]
    pub(crate) sim_tick: Duration,
}

/// Parses a probability: a number from 0 to 1.
fn probability(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("expected a number from 0 to 1, got {text:?}")),
    }
}

impl Options {
    /// Whether the embedded simulator supplies the Things.
    pub(crate) fn simulated(&self) -> bool {
        self.things.is_empty() && self.directory.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_run_the_simulator() {
        let options = Options::try_parse_from(["dash"]).expect("parses");
        assert!(options.simulated());
        assert_eq!(options.seed, 1);
        assert_eq!(options.sim_tick, Duration::from_millis(500));
        assert!(!options.headless && !options.chaos && !options.serve_only);
        assert!((options.chaos_rate - 0.04).abs() < f64::EPSILON);
    }

    #[test]
    fn chaos_rate_is_a_probability_and_needs_chaos() {
        let options =
            Options::try_parse_from(["dash", "--chaos", "--chaos-rate", "0.3"]).expect("parses");
        assert!(options.chaos && (options.chaos_rate - 0.3).abs() < f64::EPSILON);
        for bad in ["1.5", "-0.1", "often", "NaN"] {
            assert!(
                Options::try_parse_from(["dash", "--chaos", "--chaos-rate", bad]).is_err(),
                "{bad}"
            );
        }
        assert!(Options::try_parse_from(["dash", "--chaos-rate", "0.3"]).is_err());
    }

    #[test]
    fn real_things_and_durations() {
        let options = Options::try_parse_from([
            "dash",
            "--thing",
            "http://a/td",
            "--thing",
            "http://b/td",
            "--headless",
            "--duration",
            "30s",
        ])
        .expect("parses");
        assert_eq!(options.things, ["http://a/td", "http://b/td"]);
        assert!(!options.simulated());
        assert_eq!(options.duration, Some(Duration::from_secs(30)));
        assert!(Options::try_parse_from(["dash", "--duration", "soon"]).is_err());
    }
}
