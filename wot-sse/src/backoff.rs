//! Reconnect policy and the backoff schedule it produces.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{RngExt as _, SeedableRng as _};

/// How a stream reconnects: exponential backoff with jitter and a limit on failures.
///
/// The delay before reconnect step `n` is `base × factor^(n−1)`, capped at `max_delay` (or at
/// `base` if the server's `retry:` asked for more than `max_delay`), then reduced by a random
/// fraction of up to `jitter` of itself. The base is `initial_delay` until the server sends a
/// `retry:` field; from then on it is that value, but never less than
/// [`min_server_retry`](Self::min_server_retry) and never more than
/// [`max_retry_after`](Self::max_retry_after). A `Retry-After` header on a 429 or 503 response
/// makes the delay at least that long, up to `max_retry_after`.
///
/// The step `n` counts reconnects since the last *stable* connection: one that stayed open
/// for at least [`stable_after`](Self::stable_after). Every reconnect after a connection that
/// ended sooner, or after an attempt that failed, is one step further, even when each
/// connection delivered events. So a server that sends one event and closes, again and again,
/// is reconnected to less and less often instead of in a tight loop. Giving up is counted
/// separately (see [`max_attempts`](Self::max_attempts)).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use wot_sse::ReconnectPolicy;
///
/// let policy = ReconnectPolicy::new()
///     .initial_delay(Duration::from_millis(500))
///     .max_attempts(None); // never give up
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct ReconnectPolicy {
    pub(crate) initial_delay: Duration,
    pub(crate) factor: f64,
    pub(crate) max_delay: Duration,
    pub(crate) jitter: f64,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) seed: Option<u64>,
    pub(crate) min_server_retry: Duration,
    pub(crate) max_retry_after: Duration,
    pub(crate) stable_after: Duration,
}

/// The default floor on a server's `retry:` value: 1 s.
pub const DEFAULT_MIN_SERVER_RETRY: Duration = Duration::from_secs(1);

/// The default cap on a delay the server asks for (`Retry-After` or `retry:`): 5 minutes.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(5 * 60);

/// The default time a connection must stay open to reset the backoff: 1 s.
///
/// A server that answers and closes at once (the storm this guards against) never resets it;
/// one whose connections are cut now and then after seconds of data keeps reconnecting
/// promptly, and resumes.
pub const DEFAULT_STABLE_AFTER: Duration = Duration::from_secs(1);

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl ReconnectPolicy {
    /// The default policy: 1 s initial delay, factor 1.5, 30 s cap, jitter 0.5, at most 5
    /// consecutive failed attempts, fresh random jitter for every delay, a server's `retry:`
    /// taken as at least 1 s, a server-requested delay capped at 5 minutes, and the backoff
    /// reset by a connection that stayed open for 1 s.
    pub fn new() -> Self {
        Self {
            initial_delay: Duration::from_secs(1),
            factor: 1.5,
            max_delay: Duration::from_secs(30),
            jitter: 0.5,
            max_attempts: Some(5),
            seed: None,
            min_server_retry: DEFAULT_MIN_SERVER_RETRY,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            stable_after: DEFAULT_STABLE_AFTER,
        }
    }

    /// The floor on the base delay a server's `retry:` field sets. Default 1 s
    /// ([`DEFAULT_MIN_SERVER_RETRY`]).
    ///
    /// A server that sends `retry: 0` cannot make the client reconnect faster than this. The
    /// floor applies only to what the server asks for: an
    /// [`initial_delay`](Self::initial_delay) you set yourself, even zero, is used as it is
    /// until the server sends `retry:`. Test harnesses that need the server's exact value may
    /// lower it to zero.
    pub fn min_server_retry(mut self, floor: Duration) -> Self {
        self.min_server_retry = floor;
        self
    }

    /// The cap on a delay the server asks for: a `Retry-After` header (seconds, however many
    /// digits, or an HTTP date) and a `retry:` field. Default 5 minutes
    /// ([`DEFAULT_MAX_RETRY_AFTER`]).
    ///
    /// A server asking for longer (`Retry-After: 9999999999999999999`, a date years ahead)
    /// gets this delay instead: the stream keeps trying and stays closable.
    pub fn max_retry_after(mut self, cap: Duration) -> Self {
        self.max_retry_after = cap;
        self
    }

    /// How long a connection must stay open for the backoff to start again at the base delay.
    /// Default 1 s ([`DEFAULT_STABLE_AFTER`]).
    ///
    /// A connection that ends sooner, whether or not it delivered events, counts as a quick
    /// failure for the backoff: the next delay is one step longer. Zero makes every connection
    /// that opened reset the backoff.
    pub fn stable_after(mut self, open_for: Duration) -> Self {
        self.stable_after = open_for;
        self
    }

    /// The base delay before the server sends `retry:`. Default 1 s.
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// How much the delay grows per consecutive attempt; at least 1. Default 1.5.
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }

    /// The cap on the grown delay. Default 30 s.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// The largest fraction (0 to 1) randomly taken off each delay, so that many clients do not
    /// reconnect in step. 0 gives the exact schedule. Default 0.5.
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// How many failed attempts in a row end the stream (`None`: never give up). Default 5.
    ///
    /// The first connection counts. An attempt fails when it gets no response (none within the
    /// idle timeout included), a retryable status, or a body that ends before any byte
    /// arrived. The count starts again after a connection that delivered data, and after one
    /// that the server answered and that then stayed quiet past the idle timeout: a quiet
    /// server is not a failing one, so a monitor of rare events keeps reconnecting.
    ///
    /// This count only decides when to give up. How long each wait is follows the backoff
    /// step, which only a stable connection resets (see [`stable_after`](Self::stable_after)).
    pub fn max_attempts(mut self, attempts: Option<u32>) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Seeds the jitter's random numbers, for a reproducible schedule (tests): attempt `n`
    /// then always gets the same jitter. Default: fresh randomness for every delay.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The delay before retry `attempt` (1-based) of a transport that has no `retry:` field,
    /// such as HTTP polling, after a response that asked for `retry_after` (a `Retry-After`
    /// header, capped at [`max_retry_after`](Self::max_retry_after)): the schedule and jitter an
    /// event stream uses for its reconnects.
    ///
    /// ```
    /// use std::time::Duration;
    /// use wot_sse::ReconnectPolicy;
    ///
    /// let exact = ReconnectPolicy::new().jitter(0.0);
    /// assert_eq!(exact.retry_delay(2, None), Duration::from_millis(1500));
    /// ```
    pub fn retry_delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        self.delay(None, attempt, retry_after)
    }

    /// How many failed attempts in a row end a stream (`None`: never give up); see
    /// [`max_attempts`](Self::max_attempts).
    pub fn attempt_limit(&self) -> Option<u32> {
        self.max_attempts
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if !(self.factor.is_finite() && self.factor >= 1.0) {
            return Err(format!(
                "reconnect factor must be a finite number >= 1, got {}",
                self.factor
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(format!(
                "reconnect jitter must be between 0 and 1, got {}",
                self.jitter
            ));
        }
        if self.max_attempts == Some(0) {
            return Err("max_attempts must be at least 1 (or None for unlimited)".to_owned());
        }
        if self.min_server_retry > self.max_retry_after {
            return Err(format!(
                "min_server_retry ({:?}) is above max_retry_after ({:?})",
                self.min_server_retry, self.max_retry_after
            ));
        }
        Ok(())
    }

    /// The delay before reconnect step `attempt` (1-based), given the server's last `retry:`
    /// value if it sent one and a `Retry-After` delay if the last response had one.
    ///
    /// A stream keeps no state for it: the count of failures and the server's `retry:` value
    /// are kept anyway, and the jitter is drawn afresh, so an idle stream pays nothing for its
    /// schedule. With a [`seed`](Self::seed), attempt `n` always gets the same jitter.
    pub(crate) fn delay(
        &self,
        server_retry: Option<Duration>,
        attempt: u32,
        retry_after: Option<Duration>,
    ) -> Duration {
        // `max` then `min`, not `clamp`: no panic whatever the settings.
        let base = server_retry.map_or(self.initial_delay, |asked| {
            asked.max(self.min_server_retry).min(self.max_retry_after)
        });
        let cap = self.max_delay.max(base);
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let grown = base.as_secs_f64() * self.factor.powi(exponent);
        // A zero base stays zero however far the step goes (0 × inf would be NaN).
        let delay = if base.is_zero() {
            Duration::ZERO
        } else if grown < cap.as_secs_f64() {
            // Cannot fail below the cap; the fallback keeps it panic-free regardless.
            Duration::try_from_secs_f64(grown).unwrap_or(cap)
        } else {
            cap
        };
        let delay = if self.jitter > 0.0 {
            let mut rng = match self.seed {
                // `seed_from_u64` scrambles its input: neighbouring seeds give unrelated draws.
                Some(seed) => SmallRng::seed_from_u64(seed.wrapping_add(u64::from(attempt))),
                None => rand::make_rng::<SmallRng>(),
            };
            let kept = 1.0 - rng.random_range(0.0..=self.jitter);
            // Not `mul_f64`: near `Duration::MAX` the float rounds past it and that panics.
            Duration::try_from_secs_f64(delay.as_secs_f64() * kept).unwrap_or(delay)
        } else {
            delay
        };
        retry_after.map_or(delay, |at_least| {
            delay.max(at_least.min(self.max_retry_after))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact() -> ReconnectPolicy {
        ReconnectPolicy::new().jitter(0.0)
    }

    #[test]
    fn default_schedule_grows_by_half_and_caps_at_30s() {
        let policy = exact();
        let delays: Vec<f64> = (1..=12)
            .map(|n| policy.delay(None, n, None).as_secs_f64())
            .collect();
        let expected = [
            1.0,
            1.5,
            2.25,
            3.375,
            5.0625,
            7.59375,
            11.390625,
            17.0859375,
            25.62890625,
            30.0,
            30.0,
            30.0,
        ];
        for (got, want) in delays.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{delays:?}");
        }
    }

    #[test]
    fn server_retry_sets_the_base_and_may_exceed_the_cap() {
        let policy = exact().min_server_retry(Duration::ZERO);
        let retry = Some(Duration::from_millis(200));
        assert_eq!(policy.delay(retry, 1, None), Duration::from_millis(200));
        assert_eq!(policy.delay(retry, 2, None), Duration::from_millis(300));
        let retry = Some(Duration::from_secs(60));
        assert_eq!(policy.delay(retry, 3, None), Duration::from_secs(60));
    }

    #[test]
    fn server_retry_has_a_floor_and_a_cap_but_the_users_delay_has_neither() {
        let policy = exact();
        assert_eq!(
            policy.delay(Some(Duration::ZERO), 1, None),
            DEFAULT_MIN_SERVER_RETRY
        );
        assert_eq!(
            policy.delay(Some(crate::parser::MAX_RETRY), 1, None),
            DEFAULT_MAX_RETRY_AFTER
        );
        let user = exact().initial_delay(Duration::ZERO);
        assert_eq!(user.delay(None, 1, None), Duration::ZERO);
        assert_eq!(user.delay(None, 9, None), Duration::ZERO);
        // Far enough that factor^n overflows to infinity.
        assert_eq!(user.delay(None, 5_000, None), Duration::ZERO);
        assert_eq!(user.delay(None, u32::MAX, None), Duration::ZERO);
        assert_eq!(
            user.delay(Some(Duration::ZERO), 1, None),
            DEFAULT_MIN_SERVER_RETRY
        );
    }

    #[test]
    fn no_setting_makes_the_schedule_panic() {
        for jitter in [0.0, 0.5, 1.0] {
            for seed in 0..50 {
                let policy = ReconnectPolicy::new()
                    .initial_delay(Duration::MAX)
                    .max_delay(Duration::MAX)
                    .max_retry_after(Duration::MAX)
                    .factor(f64::MAX)
                    .jitter(jitter)
                    .seed(seed);
                for attempt in [1, 2, u32::MAX] {
                    let delay = policy.delay(Some(Duration::MAX), attempt, Some(Duration::MAX));
                    assert!(delay <= Duration::MAX);
                    let _ = policy.delay(None, attempt, None);
                }
            }
        }
    }

    #[test]
    fn retry_after_is_capped() {
        let policy = exact();
        assert_eq!(
            policy.delay(None, 1, Some(Duration::from_secs(u64::MAX))),
            DEFAULT_MAX_RETRY_AFTER
        );
        assert_eq!(
            policy.delay(None, 1, Some(Duration::MAX)),
            DEFAULT_MAX_RETRY_AFTER
        );
        let short = exact().max_retry_after(Duration::from_secs(2));
        assert_eq!(
            short.delay(None, 1, Some(Duration::from_secs(999_999))),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn retry_after_is_a_lower_bound() {
        let policy = exact();
        assert_eq!(
            policy.delay(None, 1, Some(Duration::from_secs(10))),
            Duration::from_secs(10)
        );
        assert_eq!(
            policy.delay(None, 1, Some(Duration::from_millis(10))),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn jitter_stays_in_range_and_is_reproducible_with_a_seed() {
        let policy = ReconnectPolicy::new().seed(7);
        let mut cuts = Vec::new();
        for n in 1..20 {
            let (da, db) = (policy.delay(None, n, None), policy.delay(None, n, None));
            assert_eq!(da, db);
            let full = exact().delay(None, n, None);
            assert!(da <= full && da >= full / 2, "{da:?} vs {full:?}");
            cuts.push(da.as_secs_f64() / full.as_secs_f64());
        }
        // Each delay draws a new random cut.
        cuts.dedup();
        assert!(cuts.len() > 15, "{cuts:?}");
    }

    #[test]
    fn bad_settings_are_rejected() {
        assert!(ReconnectPolicy::new().factor(0.5).validate().is_err());
        assert!(ReconnectPolicy::new().jitter(1.5).validate().is_err());
        assert!(
            ReconnectPolicy::new()
                .max_attempts(Some(0))
                .validate()
                .is_err()
        );
        assert!(
            ReconnectPolicy::new()
                .min_server_retry(Duration::from_secs(10))
                .max_retry_after(Duration::from_secs(1))
                .validate()
                .is_err()
        );
        assert!(ReconnectPolicy::new().validate().is_ok());
    }
}
