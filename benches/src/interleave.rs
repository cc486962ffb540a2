//! Interleaved timing, for a machine whose speed drifts: the contenders run once each in turn,
//! round after round, and each ratio is the median of the per-round ratios, so the runs that
//! are compared are milliseconds apart rather than the several seconds criterion spends on one
//! contender before the next.

use std::time::{Duration, Instant};

/// The times of every contender in every round.
#[derive(Debug, Clone)]
pub struct Rounds {
    names: Vec<&'static str>,
    /// `millis[contender][round]`.
    millis: Vec<Vec<f64>>,
}

/// Runs each contender once per round for `rounds` rounds, rotating the order so that none
/// always runs right after the same one. A contender returns how long its run took.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let mut fast = || Duration::from_millis(1);
/// let mut slow = || Duration::from_millis(3);
/// let rounds = benches::interleave::run(5, &mut [("fast", &mut fast), ("slow", &mut slow)]);
/// assert_eq!(rounds.ratio("slow", "fast"), 3.0);
/// ```
pub fn run(
    rounds: usize,
    contenders: &mut [(&'static str, &mut dyn FnMut() -> Duration)],
) -> Rounds {
    let mut millis = vec![Vec::with_capacity(rounds); contenders.len()];
    for round in 0..rounds {
        for k in 0..contenders.len() {
            let index = (round + k) % contenders.len();
            let (_, contender) = &mut contenders[index];
            millis[index].push(contender().as_secs_f64() * 1e3);
        }
    }
    Rounds {
        names: contenders.iter().map(|(name, _)| *name).collect(),
        millis,
    }
}

/// What both interleaved benches do: one round to warm up, then `SSE_ROUNDS` rounds
/// (`default_rounds` if unset); prints each contender's median time and, for each `(a, b)` in
/// `ratios`, the median of `a`'s time over `b`'s, each line starting with `prefix`.
pub fn run_and_report(
    prefix: &str,
    default_rounds: usize,
    contenders: &mut [(&'static str, &mut dyn FnMut() -> Duration)],
    ratios: &[(&str, &str)],
) {
    run(1, contenders);
    let rounds = run(rounds_from_env(default_rounds), contenders);
    rounds.print_medians(prefix);
    for &(a, b) in ratios {
        let ratio = rounds.ratio(a, b);
        println!("{prefix}: {a} / {b} = {ratio:.2} (median of per-round ratios)");
    }
}

impl Rounds {
    fn times(&self, name: &str) -> &[f64] {
        let index = self.names.iter().position(|n| *n == name);
        index
            .and_then(|i| self.millis.get(i))
            .map_or(&[], Vec::as_slice)
    }

    /// The median time of `name`, in milliseconds.
    pub fn median_millis(&self, name: &str) -> f64 {
        median(self.times(name).to_vec())
    }

    /// The median over the rounds of `a`'s time divided by `b`'s.
    pub fn ratio(&self, a: &str, b: &str) -> f64 {
        let ratios = self.times(a).iter().zip(self.times(b)).map(|(a, b)| a / b);
        median(ratios.collect())
    }

    /// Prints one line per contender (`<prefix>/<name>: median ...`).
    fn print_medians(&self, prefix: &str) {
        for name in &self.names {
            let rounds = self.times(name).len();
            let median = self.median_millis(name);
            println!("{prefix}/{name}: median {median:.3} ms over {rounds} rounds");
        }
    }
}

/// A contender for [`run`]: times one call of `count`, which runs a whole workload and returns
/// the number of events it received, and checks that it is `expected`.
pub fn timed(expected: u64, mut count: impl FnMut() -> u64) -> impl FnMut() -> Duration {
    move || {
        let started = Instant::now();
        let events = count();
        let elapsed = started.elapsed();
        assert_eq!(events, expected, "every event arrives");
        elapsed
    }
}

/// The middle value (the upper one of the two for an even count); NaN for none.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The number of rounds: `SSE_ROUNDS` if set, otherwise `default`.
fn rounds_from_env(default: usize) -> usize {
    std::env::var("SSE_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(default)
}
