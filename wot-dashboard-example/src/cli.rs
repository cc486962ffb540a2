//! Command-line options, and their checks.
//!
//! Each value is checked as it is parsed (a clap error names the option and exits with
//! status 2); [`Options::validate`] checks what depends on several options and the secrets
//! (whose values must never be echoed in an error).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::app::Limits;

/// Shortest period any duration option accepts.
const MIN_PERIOD: Duration = Duration::from_millis(1);
/// Longest period any duration option accepts (365 days).
const MAX_PERIOD: Duration = Duration::from_secs(365 * 24 * 3600);
/// Smallest byte budget accepted by `--log-bytes` and `--history-bytes` (1 KiB).
const MIN_BYTES: usize = 1024;
/// Largest byte budget accepted by `--log-bytes` and `--history-bytes` (1 GiB).
const MAX_BYTES: usize = 1 << 30;
/// Most event log entries accepted by `--log-entries`.
const MAX_LOG_ENTRIES: usize = 1_000_000;

/// A live terminal dashboard for W3C Web of Things devices.
///
/// With no `--thing` or `--directory` it starts an embedded simulator of four Things and
/// watches those.
// `Debug` (below) shows each secret only as `Some("…")`, so a log line with the options leaks none.
#[derive(Clone, Parser)]
#[command(version, about)]
// `--output` needs a state directory: `--state`, or the default one of real Things.
#[command(group(
    clap::ArgGroup::new("state_source")
        .args(["state", "things", "directory"])
        .multiple(true)
))]
pub struct Options {
    /// URL of a Thing Description to monitor (repeatable); replaces the simulator.
    #[arg(long = "thing", value_name = "URL", value_parser = http_url)]
    pub things: Vec<String>,

    /// Base URL of a Thing Description Directory (`GET {URL}/things` lists TDs); replaces the
    /// simulator.
    #[arg(long, value_name = "URL", value_parser = http_url)]
    pub directory: Option<String>,

    /// Alert rules file (YAML, TOML or JSON, the wot-alerts format). Default: the rules
    /// bundled for the simulator, or none for real Things.
    #[arg(long, value_name = "FILE", value_parser = non_empty_path)]
    pub rules: Option<PathBuf>,

    /// Refuse to start when a rule does not fit the loaded Thing Descriptions (an unknown
    /// Thing id or property, a numeric condition on a non-numeric property) instead of
    /// warning about it.
    #[arg(long)]
    pub strict_rules: bool,

    /// Bearer token for Things whose TD asks for `bearer` security.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "WOT_BEARER_TOKEN",
        hide_env_values = true
    )]
    pub bearer_token: Option<String>,

    /// `USER:PASSWORD` for Things whose TD asks for `basic` security.
    #[arg(
        long,
        value_name = "USER:PASSWORD",
        env = "WOT_BASIC_AUTH",
        hide_env_values = true
    )]
    pub basic_auth: Option<String>,

    /// Print property updates, events and alert notifications as JSON lines instead of
    /// drawing.
    #[arg(long)]
    pub headless: bool,

    /// Stop after this long (e.g. `30s`, `5m`; from 1 ms to 365 days). Counts from the start,
    /// loading the Thing Descriptions included.
    #[arg(long, value_name = "DURATION", value_parser = period)]
    pub duration: Option<Duration>,

    /// Longest wait for one Thing Description or directory listing: connecting, the response
    /// head and the whole body (from 1 ms to 365 days).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = period)]
    pub td_timeout: Duration,

    /// Most entries the event log keeps (from 1 to 1000000); the oldest go first.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.log_entries, value_parser = log_entries)]
    pub log_entries: usize,

    /// Most bytes the event log keeps (e.g. `4MiB`; from 1 KiB to 1 GiB); the oldest entries
    /// go first.
    #[arg(long, value_name = "SIZE", default_value = "4MiB", value_parser = byte_budget)]
    pub log_bytes: usize,

    /// Most bytes of chart history kept for all property panels together (e.g. `16MiB`; from
    /// 1 KiB to 1 GiB).
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = byte_budget)]
    pub history_bytes: usize,

    /// Seed of the simulator: the same seed gives the same run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Make the simulator drop and refuse connections at random, to watch reconnect and
    /// resume at work.
    #[arg(long)]
    pub chaos: bool,

    /// With `--chaos`: the chance (0 to 1) that the simulator cuts a connection in the middle
    /// of each record it sends. Refusals stay at 8 % of connections.
    #[arg(long, value_name = "P", default_value_t = 0.04, requires = "chaos", value_parser = probability)]
    pub chaos_rate: f64,

    /// Run only the simulator and print its URLs.
    #[arg(long)]
    pub serve_only: bool,

    /// How many Things the simulator serves (from 1 to 10000): the fridge, pump, air sensor
    /// and inverter, then more of each (`fridge-2`, `pump-2`, ...), each with its own TD in
    /// the simulator's directory and id `urn:wot-live:sim:<name>`.
    #[arg(long = "things", value_name = "N", default_value_t = crate::sim::DEFAULT_THINGS, value_parser = sim_things)]
    pub sim_things: usize,

    /// Most Thing Descriptions taken from the `--directory` listing (from 1 to 100000); a
    /// longer listing is refused. The embedded simulator's directory is always taken whole.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = directory_things)]
    pub max_directory_things: usize,

    /// Largest Thing Description or `--directory` listing accepted (e.g. `64MiB`; from 1 KiB
    /// to 1 GiB). A listing of 10000 simulated Things is about 18 MiB.
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = byte_budget)]
    pub max_directory_bytes: usize,

    /// Time between two simulator steps (from 1 ms to 365 days).
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = period)]
    pub sim_tick: Duration,

    /// Serve the dashboard as a web page at ADDR (default 127.0.0.1:8765; port 0 picks a
    /// free one) instead of drawing in the terminal. Prints `web: URL` (with `--headless`,
    /// which it can run beside, a `{"type":"web"}` JSON line).
    #[arg(
        long,
        value_name = "ADDR",
        num_args = 0..=1,
        default_missing_value = "127.0.0.1:8765",
        conflicts_with_all = ["serve_only"]
    )]
    pub web: Option<SocketAddr>,

    /// Keep resume positions, alert state (acknowledgements and silences included) and the
    /// last hour of history in DIR, and restore them at start. Default for Things given by
    /// `--thing` or `--directory`: `$XDG_STATE_HOME/wot-dashboard`, else
    /// `~/.local/state/wot-dashboard`; the embedded simulator keeps no state unless this is
    /// given.
    #[arg(long, value_name = "DIR", value_parser = non_empty_path, conflicts_with = "no_state")]
    pub state: Option<PathBuf>,

    /// Keep no state on disk: start empty, forget everything at exit.
    #[arg(long)]
    pub no_state: bool,

    /// With `--headless`: append the JSON lines to FILE instead of writing them on stdout,
    /// each property update and event exactly once across kills and restarts (the file's
    /// length is saved with the state; a restart cuts the file back to it and writes the
    /// lines of the last saved batch again; lines are not synced, so a power cut is not
    /// covered). Needs a state directory (`--state DIR`, or the default one of
    /// `--thing`/`--directory`); FILE must be a regular file.
    #[arg(
        long,
        value_name = "FILE",
        value_parser = non_empty_path,
        requires = "headless",
        requires = "state_source",
        conflicts_with_all = ["no_state", "serve_only"]
    )]
    pub output: Option<PathBuf>,

    /// Run as a collector of a fleet on NATS JetStream at URL (`nats://HOST:PORT`; user info
    /// in the URL is used and never shown) instead of showing anything: share the Things
    /// (`--thing`, `--directory` or the simulator) with the other collectors through leases,
    /// publish what the ones held send, and print one JSON line when started, one per Thing
    /// claimed or released, one when stopped. Stops cleanly (leases released, resume points
    /// written) at `--duration`, Ctrl-C or SIGTERM.
    #[arg(
        long,
        value_name = "URL",
        value_parser = NatsUrl,
        conflicts_with_all = ["web", "headless", "serve_only", "output", "source", "state"]
    )]
    pub collect: Option<String>,

    /// Read the property values and events from the NATS JetStream stream at URL
    /// (`nats://HOST:PORT`), which `--collect` processes fill, instead of from the Things.
    /// The Thing Descriptions (titles, schemas) still come from `--thing` or `--directory`,
    /// or else from the embedded simulator (`--things N`: the same ids as a `--serve-only`
    /// simulator of that size), whose own values are not shown. Records of other Things are
    /// in the headless lines by id only. Keeps no state.
    #[arg(
        long,
        value_name = "URL",
        value_parser = NatsUrl,
        conflicts_with_all = ["serve_only", "output", "state"]
    )]
    pub source: Option<String>,

    /// With `--collect`: this collector's name in the lease bucket (at most 256 bytes).
    /// Default: the host name and the process id.
    #[arg(long, value_name = "NAME", requires = "collect", value_parser = collector_name)]
    pub collector_name: Option<String>,

    /// With `--collect`: the lease time (from 1 s to 1 hour). A dead collector's Things are
    /// claimed by the others within about this and a third of it. Every collector of a fleet
    /// must use the same.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = lease_ttl)]
    pub lease_ttl: Duration,

    /// With `--collect`: the fleet's partition count (from 1 to 1024), the `p<k>` in the
    /// subjects. Every collector of a fleet must use the same.
    #[arg(long, value_name = "N", default_value_t = wot_nats::DEFAULT_PARTITIONS, value_parser = partitions)]
    pub partitions: u16,

    /// With `--collect`: most Things this collector holds (from 1 to 100000).
    #[arg(long, value_name = "N", default_value_t = wot_nats::DEFAULT_MAX_HELD, value_parser = directory_things)]
    pub max_held: usize,

    /// Longest wait for NATS: connecting, and each request (from 1 ms to 5 minutes).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = nats_timeout)]
    pub nats_timeout: Duration,

    /// Token that the web page's state-changing requests must carry
    /// (`Authorization: Bearer TOKEN`). Without it, one is generated when `--web` listens on
    /// a non-loopback address. Printable ASCII without spaces.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "WOT_DASHBOARD_WEB_TOKEN",
        hide_env_values = true
    )]
    pub web_token: Option<String>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn hidden(secret: &Option<String>) -> Option<&'static str> {
            secret.as_ref().map(|_| "…")
        }
        f.debug_struct("Options")
            .field("things", &self.things)
            .field("directory", &self.directory)
            .field("rules", &self.rules)
            .field("strict_rules", &self.strict_rules)
            .field("bearer_token", &hidden(&self.bearer_token))
            .field("basic_auth", &hidden(&self.basic_auth))
            .field("headless", &self.headless)
            .field("duration", &self.duration)
            .field("td_timeout", &self.td_timeout)
            .field("log_entries", &self.log_entries)
            .field("log_bytes", &self.log_bytes)
            .field("history_bytes", &self.history_bytes)
            .field("seed", &self.seed)
            .field("chaos", &self.chaos)
            .field("chaos_rate", &self.chaos_rate)
            .field("serve_only", &self.serve_only)
            .field("sim_tick", &self.sim_tick)
            .field("sim_things", &self.sim_things)
            .field("max_directory_things", &self.max_directory_things)
            .field("max_directory_bytes", &self.max_directory_bytes)
            .field("web", &self.web)
            .field("web_token", &hidden(&self.web_token))
            .field("state", &self.state)
            .field("no_state", &self.no_state)
            .field("output", &self.output)
            .field(
                "collect",
                &self.collect.as_deref().map(wot_nats::redact_url),
            )
            .field("source", &self.source.as_deref().map(wot_nats::redact_url))
            .field("collector_name", &self.collector_name)
            .field("lease_ttl", &self.lease_ttl)
            .field("partitions", &self.partitions)
            .field("max_held", &self.max_held)
            .field("nats_timeout", &self.nats_timeout)
            .finish()
    }
}

/// An option combination or secret that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// `--serve-only` with Things of its own to watch.
    #[error("--serve-only runs the simulator; leave out --thing and --directory")]
    ServeOnlyWithThings,
    /// Simulator options while real Things replace the simulator.
    #[error("{0} configures the simulator, which --thing and --directory replace")]
    SimulatorOption(&'static str),
    /// An empty secret, or one with control characters (it would not fit in a header).
    #[error("{0} is empty or contains control characters (the value is not shown)")]
    BadSecret(&'static str),
    /// `--basic-auth` without `USER:PASSWORD`.
    #[error("--basic-auth must be USER:PASSWORD with a non-empty USER (the value is not shown)")]
    BasicAuth,
    /// `--output` without a state directory (real Things, but no `XDG_STATE_HOME` or `HOME`
    /// to put the default one in).
    #[error("--output needs a state directory: give --state DIR")]
    OutputWithoutState,
}

/// Parses a duration option: humantime syntax, from [`MIN_PERIOD`] to [`MAX_PERIOD`].
fn period(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if duration < MIN_PERIOD {
        Err("must be at least 1ms".to_owned())
    } else if duration > MAX_PERIOD {
        Err("must be at most 365 days".to_owned())
    } else {
        Ok(duration)
    }
}

/// Parses a probability: a number from 0 to 1.
fn probability(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("expected a number from 0 to 1, got {text:?}")),
    }
}

/// Parses an absolute `http` or `https` URL with a host.
fn http_url(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("the URL is empty".to_owned());
    }
    let url = url::Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "expected an http or https URL, got {}:",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".to_owned());
    }
    Ok(text.to_owned())
}

/// Parses `--things`: a whole number from 1 to [`crate::sim::MAX_THINGS`].
fn sim_things(text: &str) -> Result<usize, String> {
    let most = crate::sim::MAX_THINGS;
    match text.parse::<usize>() {
        Ok(n) if (1..=most).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from 1 to {most}")),
    }
}

/// Most directory entries `--max-directory-things` accepts.
const MAX_DIRECTORY_THINGS: usize = 100_000;

fn directory_things(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_DIRECTORY_THINGS).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a whole number from 1 to {MAX_DIRECTORY_THINGS}"
        )),
    }
}

/// Parses a NATS server URL (`nats://HOST:PORT`, `tls://`, `ws://`, `wss://`, or
/// `HOST:PORT`; several joined by commas). The text is never quoted back (clap's own
/// errors quote the value): it may hold a password.
#[derive(Debug, Clone, Copy)]
struct NatsUrl;

impl clap::builder::TypedValueParser for NatsUrl {
    type Value = String;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        let name = arg.map_or_else(
            || "the NATS URL".to_owned(),
            |a| format!("--{}", a.get_id()),
        );
        let text = value.to_str().unwrap_or_default();
        nats_url(text).map_err(|why| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value for {name}: {why}\n"),
            )
        })
    }
}

fn nats_url(text: &str) -> Result<String, String> {
    let well_formed = !text.trim().is_empty()
        && !text.chars().any(|c| c.is_control() || c.is_whitespace())
        && text.split(',').all(|one| {
            let rest = match one.split_once("://") {
                Some(("nats" | "tls" | "ws" | "wss", rest)) => rest,
                Some(_) => return false,
                None => one,
            };
            let host = rest.rsplit('@').next().unwrap_or_default();
            !host.is_empty() && !host.starts_with(':')
        });
    if well_formed {
        Ok(text.to_owned())
    } else {
        Err(
            "expected nats://HOST:PORT (or tls://, ws://, wss://; the value is not shown)"
                .to_owned(),
        )
    }
}

fn collector_name(text: &str) -> Result<String, String> {
    if text.is_empty()
        || text.len() > wot_nats::MAX_HOLDER_LEN
        || text.chars().any(char::is_control)
    {
        Err(format!(
            "expected 1 to {} bytes without control characters",
            wot_nats::MAX_HOLDER_LEN
        ))
    } else {
        Ok(text.to_owned())
    }
}

fn lease_ttl(text: &str) -> Result<Duration, String> {
    let ttl = period(text)?;
    if (Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&ttl) {
        Ok(ttl)
    } else {
        Err("must be from 1s to 1h".to_owned())
    }
}

fn nats_timeout(text: &str) -> Result<Duration, String> {
    let timeout = period(text)?;
    if timeout <= crate::nats::MAX_NATS_TIMEOUT {
        Ok(timeout)
    } else {
        Err("must be at most 5 minutes".to_owned())
    }
}

fn partitions(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err("expected a whole number from 1 to 1024".to_owned()),
    }
}

fn non_empty_path(text: &str) -> Result<PathBuf, String> {
    if text.is_empty() {
        Err("the path is empty".to_owned())
    } else {
        Ok(PathBuf::from(text))
    }
}

fn log_entries(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_LOG_ENTRIES).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a whole number from 1 to {MAX_LOG_ENTRIES}"
        )),
    }
}

/// Parses a byte count: a whole number with an optional unit (`B`, `KiB`, `MiB`, `GiB`, or
/// `K`, `M`, `G` for the same powers of 1024), from [`MIN_BYTES`] to [`MAX_BYTES`].
fn byte_budget(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        other => return Err(format!("unknown unit {other:?}; use B, KiB, MiB or GiB")),
    };
    let bytes = digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("expected a size such as 4MiB, got {text:?}"))?;
    if (MIN_BYTES..=MAX_BYTES).contains(&bytes) {
        Ok(bytes)
    } else {
        Err("must be from 1KiB to 1GiB".to_owned())
    }
}

/// An empty secret or one with control characters cannot be sent in a header.
fn secret_ok(secret: &str) -> bool {
    !secret.is_empty() && !secret.chars().any(char::is_control)
}

impl Options {
    /// Whether the embedded simulator supplies the Things (with `--source`, only their TDs).
    pub fn simulated(&self) -> bool {
        self.things.is_empty() && self.directory.is_none()
    }

    /// Checks what the parser cannot check alone: option combinations and the secrets.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), OptionsError> {
        if self.serve_only && !self.simulated() {
            return Err(OptionsError::ServeOnlyWithThings);
        }
        if !self.simulated() && self.chaos {
            return Err(OptionsError::SimulatorOption("--chaos"));
        }
        if !self.simulated() && self.sim_things != crate::sim::DEFAULT_THINGS {
            return Err(OptionsError::SimulatorOption("--things"));
        }
        if let Some(token) = &self.bearer_token
            && !secret_ok(token)
        {
            return Err(OptionsError::BadSecret("--bearer-token"));
        }
        if let Some(token) = &self.web_token
            && (token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(OptionsError::BadSecret("--web-token"));
        }
        if let Some(pair) = &self.basic_auth {
            if !secret_ok(pair) {
                return Err(OptionsError::BadSecret("--basic-auth"));
            }
            match pair.split_once(':') {
                Some((user, _)) if !user.is_empty() => {}
                _ => return Err(OptionsError::BasicAuth),
            }
        }
        if self.output.is_some() && self.state_dir().is_none() {
            return Err(OptionsError::OutputWithoutState);
        }
        Ok(())
    }

    /// The state directory: `--state`, else none with `--no-state` or the simulator, else
    /// the platform default ([`default_state_dir`]).
    pub fn state_dir(&self) -> Option<PathBuf> {
        if self.no_state || self.collect.is_some() || self.source.is_some() {
            return None;
        }
        if let Some(dir) = &self.state {
            return Some(dir.clone());
        }
        if self.simulated() {
            return None;
        }
        default_state_dir(
            std::env::var_os("XDG_STATE_HOME").as_deref(),
            std::env::var_os("HOME").as_deref(),
        )
    }

    /// The state limits these options ask for.
    pub fn limits(&self) -> Limits {
        Limits {
            log_entries: self.log_entries,
            log_bytes: self.log_bytes,
            history_bytes: self.history_bytes,
            ..Limits::DEFAULT
        }
    }
}

/// The default state directory for real Things: `$XDG_STATE_HOME/wot-dashboard` when that
/// variable holds an absolute path (the XDG base directory rule: a relative one is ignored),
/// else `$HOME/.local/state/wot-dashboard`; none when neither is usable.
pub fn default_state_dir(
    xdg_state_home: Option<&std::ffi::OsStr>,
    home: Option<&std::ffi::OsStr>,
) -> Option<PathBuf> {
    let absolute = |dir: &std::ffi::OsStr| {
        let dir = std::path::Path::new(dir);
        dir.is_absolute().then(|| dir.to_path_buf())
    };
    if let Some(dir) = xdg_state_home.and_then(absolute) {
        return Some(dir.join("wot-dashboard"));
    }
    home.and_then(absolute)
        .map(|home| home.join(".local").join("state").join("wot-dashboard"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        Options::try_parse_from(std::iter::once("dash").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_run_the_simulator() {
        let options = parse(&[]).expect("parses");
        assert!(options.simulated());
        assert_eq!(options.seed, 1);
        assert_eq!(options.sim_tick, Duration::from_millis(500));
        assert_eq!(options.td_timeout, Duration::from_secs(10));
        assert_eq!(options.log_entries, 1000);
        assert_eq!(options.log_bytes, 4 << 20);
        assert_eq!(options.history_bytes, 16 << 20);
        assert!(!options.headless && !options.chaos && !options.serve_only);
        assert!(!options.strict_rules);
        assert!((options.chaos_rate - 0.04).abs() < f64::EPSILON);
        assert_eq!(options.validate(), Ok(()));
        assert_eq!(options.limits().log_bytes, 4 << 20);
    }

    #[test]
    fn web_takes_an_optional_address_and_excludes_the_other_modes() {
        assert_eq!(parse(&[]).expect("parses").web, None);
        let default = parse(&["--web"]).expect("parses").web;
        assert_eq!(default, Some("127.0.0.1:8765".parse().expect("address")));
        let any = parse(&["--web", "0.0.0.0:0"]).expect("parses").web;
        assert_eq!(any, Some("0.0.0.0:0".parse().expect("address")));
        let v6 = parse(&["--web=[::1]:9000"]).expect("parses").web;
        assert_eq!(v6, Some("[::1]:9000".parse().expect("address")));
        assert!(parse(&["--web", "localhost"]).is_err());
        assert!(parse(&["--web", "--headless"]).is_ok(), "both can run");
        assert!(parse(&["--web", "--serve-only"]).is_err());
    }

    #[test]
    fn state_is_kept_for_real_things_and_not_for_the_simulator_by_default() {
        assert_eq!(parse(&[]).expect("parses").state_dir(), None);
        let given = parse(&["--state", "/tmp/s"]).expect("parses");
        assert_eq!(given.state_dir(), Some(PathBuf::from("/tmp/s")));
        let off = parse(&["--thing", "http://a/td", "--no-state"]).expect("parses");
        assert_eq!(off.state_dir(), None);
        assert!(parse(&["--state", "/tmp/s", "--no-state"]).is_err());
        assert!(parse(&["--state", ""]).is_err());
        let os = |s: &'static str| Some(std::ffi::OsStr::new(s));
        assert_eq!(
            default_state_dir(os("/x/state"), os("/home/u")),
            Some(PathBuf::from("/x/state/wot-dashboard"))
        );
        assert_eq!(
            default_state_dir(os("relative"), os("/home/u")),
            Some(PathBuf::from("/home/u/.local/state/wot-dashboard"))
        );
        assert_eq!(
            default_state_dir(None, os("/home/u")),
            Some(PathBuf::from("/home/u/.local/state/wot-dashboard"))
        );
        assert_eq!(default_state_dir(None, None), None);
        assert_eq!(default_state_dir(os(""), os("")), None);
    }

    #[test]
    fn output_needs_headless_and_a_state_directory() {
        let given = parse(&[
            "--headless",
            "--state",
            "/tmp/s",
            "--output",
            "/tmp/o.jsonl",
        ])
        .expect("parses");
        assert_eq!(given.output, Some(PathBuf::from("/tmp/o.jsonl")));
        assert_eq!(given.validate(), Ok(()));
        // Real Things have a default state directory.
        assert!(parse(&["--headless", "--thing", "http://a/td", "--output", "o"]).is_ok());
        for (args, names) in [
            (
                &["--state", "/tmp/s", "--output", "o"][..],
                &["--headless", "--output"][..],
            ),
            (&["--headless", "--output", "o"], &["--state", "--output"]),
            (
                &[
                    "--headless",
                    "--thing",
                    "http://a/td",
                    "--no-state",
                    "--output",
                    "o",
                ],
                &["--no-state", "--output"],
            ),
        ] {
            let error = parse(args).expect_err("refused");
            let text = error.to_string();
            assert!(names.iter().all(|n| text.contains(n)), "{args:?}: {text}");
            assert_eq!(error.exit_code(), 2, "{args:?}");
        }
        assert!(parse(&["--headless", "--state", "/tmp/s", "--output", ""]).is_err());
    }

    #[test]
    fn things_sizes_the_simulator_fleet_within_its_limits() {
        assert_eq!(parse(&[]).expect("parses").sim_things, 4);
        let fleet = parse(&["--serve-only", "--things", "300"]).expect("parses");
        assert_eq!(fleet.sim_things, 300);
        assert_eq!(fleet.validate(), Ok(()));
        assert_eq!(
            parse(&["--things", "10000"]).expect("parses").sim_things,
            10_000
        );
        for bad in ["0", "10001", "-1", "many", ""] {
            let arg = format!("--things={bad}");
            let error = parse(&[&arg]).expect_err(bad);
            assert!(error.to_string().contains("--things"), "{error}");
            assert_eq!(error.exit_code(), 2);
        }
        let real = parse(&["--thing", "http://a/td", "--things", "10"]).expect("parses");
        assert_eq!(
            real.validate(),
            Err(OptionsError::SimulatorOption("--things"))
        );
        assert_eq!(parse(&[]).expect("parses").max_directory_bytes, 16 << 20);
        let big = parse(&["--max-directory-bytes", "64MiB"]).expect("parses");
        assert_eq!(big.max_directory_bytes, 64 << 20);
        for bad in ["0", "2GiB"] {
            let error = parse(&["--max-directory-bytes", bad]).expect_err(bad);
            assert!(
                error.to_string().contains("--max-directory-bytes"),
                "{error}"
            );
        }
        for bad in ["0", "100001"] {
            let error = parse(&["--max-directory-things", bad]).expect_err(bad);
            assert!(
                error.to_string().contains("--max-directory-things"),
                "{error}"
            );
        }
    }

    #[test]
    fn chaos_rate_is_a_probability_and_needs_chaos() {
        let options = parse(&["--chaos", "--chaos-rate", "0.3"]).expect("parses");
        assert!(options.chaos && (options.chaos_rate - 0.3).abs() < f64::EPSILON);
        for bad in ["1.5", "-0.1", "often", "NaN", "inf"] {
            assert!(parse(&["--chaos", "--chaos-rate", bad]).is_err(), "{bad}");
        }
        assert!(parse(&["--chaos-rate", "0.3"]).is_err());
    }

    #[test]
    fn real_things_and_durations() {
        let options = parse(&[
            "--thing",
            "http://a/td",
            "--thing",
            "https://b:8443/td",
            "--headless",
            "--duration",
            "30s",
            "--td-timeout",
            "2s",
        ])
        .expect("parses");
        assert_eq!(options.things, ["http://a/td", "https://b:8443/td"]);
        assert!(!options.simulated());
        assert_eq!(options.duration, Some(Duration::from_secs(30)));
        assert_eq!(options.td_timeout, Duration::from_secs(2));
        assert!(parse(&["--duration", "soon"]).is_err());
    }

    #[test]
    fn impossible_periods_are_rejected_with_the_option_named() {
        for option in ["--duration", "--td-timeout", "--sim-tick"] {
            for bad in [
                "0s",
                "0",
                "0ms",
                "500us",
                "-1s",
                "",
                "400days",
                "1000000000000y",
            ] {
                let arg = format!("{option}={bad}");
                let error = parse(&[&arg]).expect_err(bad).to_string();
                assert!(error.contains(option), "{option} {bad}: {error}");
            }
            assert!(parse(&[option, "1ms"]).is_ok(), "{option}");
            assert!(parse(&[option, "365days"]).is_ok(), "{option}");
        }
    }

    #[test]
    fn urls_must_be_http_with_a_host() {
        for bad in [
            "",
            " ",
            "td.json",
            "file:///etc/passwd",
            "ftp://x/td",
            "http://",
        ] {
            let error = parse(&["--thing", bad]).expect_err(bad).to_string();
            assert!(error.contains("--thing"), "{bad}: {error}");
            assert!(parse(&["--directory", bad]).is_err(), "{bad}");
        }
        assert!(parse(&["--rules", ""]).is_err());
    }

    #[test]
    fn sizes_and_counts_have_units_and_ranges() {
        let options = parse(&[
            "--log-bytes",
            "64KiB",
            "--history-bytes",
            "2M",
            "--log-entries",
            "5",
        ])
        .expect("parses");
        assert_eq!(
            (
                options.log_bytes,
                options.history_bytes,
                options.log_entries
            ),
            (64 << 10, 2 << 20, 5)
        );
        assert_eq!(
            parse(&["--log-bytes", "1024"]).expect("bytes").log_bytes,
            1024
        );
        for bad in [
            "0",
            "1023",
            "2GiB",
            "lots",
            "1.5MiB",
            "-1",
            "99999999999999999999999",
            "4XB",
        ] {
            assert!(parse(&["--log-bytes", bad]).is_err(), "{bad}");
            assert!(parse(&["--history-bytes", bad]).is_err(), "{bad}");
        }
        for bad in ["0", "-1", "1000001", "many"] {
            assert!(parse(&["--log-entries", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn combinations_and_secrets_are_checked_without_showing_them() {
        let check = |args: &[&str]| parse(args).expect("parses").validate();
        assert_eq!(
            check(&["--serve-only", "--thing", "http://a/td"]),
            Err(OptionsError::ServeOnlyWithThings)
        );
        assert_eq!(
            check(&["--chaos", "--directory", "http://a/"]),
            Err(OptionsError::SimulatorOption("--chaos"))
        );
        for (args, option) in [
            (["--bearer-token", ""], "--bearer-token"),
            (["--bearer-token", "sec\r\nret"], "--bearer-token"),
            (["--basic-auth", "user:pa\nss"], "--basic-auth"),
        ] {
            let error = check(&args).expect_err(option);
            assert_eq!(error, OptionsError::BadSecret(option));
            assert!(!error.to_string().contains("sec"), "{error}");
        }
        for bad in ["nopassword", ":password"] {
            assert_eq!(check(&["--basic-auth", bad]), Err(OptionsError::BasicAuth));
        }
        assert_eq!(check(&["--basic-auth", "user:"]), Ok(()));
        for bad in ["", "two words", "tab\there", "é"] {
            assert_eq!(
                check(&["--web", "--web-token", bad]),
                Err(OptionsError::BadSecret("--web-token"))
            );
        }
        assert_eq!(check(&["--web", "--web-token", "a1-B2_c3.~+/="]), Ok(()));
        assert_eq!(check(&["--bearer-token", "abc.def"]), Ok(()));
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let options = Options::try_parse_from([
            "dash",
            "--bearer-token",
            "bearer-secret",
            "--basic-auth",
            "user:basic-secret",
            "--web",
            "--web-token",
            "web-secret",
        ])
        .expect("options");
        let shown = format!("{options:?}");
        for secret in ["bearer-secret", "basic-secret", "web-secret"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("web_token: Some(\"…\")"), "{shown}");
    }
}
