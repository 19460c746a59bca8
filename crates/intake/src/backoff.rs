//! Reconnect delays: exponential with "equal jitter", so many mailboxes that
//! failed together do not reconnect together.

use std::time::Duration;

/// Delays for consecutive failed attempts: `initial * 2^attempt`, capped at
/// `maximum`, of which the upper half is random.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub maximum: Duration,
}

impl Backoff {
    /// One second after the first failure, doubling up to five minutes.
    pub const RECONNECT: Backoff = Backoff {
        initial: Duration::from_secs(1),
        maximum: Duration::from_secs(300),
    };

    /// The ceiling for `attempt` (0 for the first retry): `initial * 2^attempt`
    /// capped at `maximum`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 2u32.checked_pow(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial
            .checked_mul(factor)
            .unwrap_or(self.maximum)
            .min(self.maximum)
    }

    /// The delay before retry number `attempt`, for a `jitter` drawn
    /// uniformly from `[0, 1]`: between half the ceiling and the ceiling.
    /// Pure, so it is tested; [`Backoff::delay_with_random_jitter`] draws.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let ceiling = self.ceiling(attempt);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let half = ceiling / 2;
        half + (ceiling - half).mul_f64(jitter)
    }

    pub fn delay_with_random_jitter(&self, attempt: u32) -> Duration {
        self.delay(attempt, fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_up_to_the_maximum() {
        let backoff = Backoff::RECONNECT;
        assert_eq!(backoff.ceiling(0), Duration::from_secs(1));
        assert_eq!(backoff.ceiling(1), Duration::from_secs(2));
        assert_eq!(backoff.ceiling(5), Duration::from_secs(32));
        assert_eq!(backoff.ceiling(9), Duration::from_secs(300));
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn jitter_stays_within_half_and_whole_ceiling() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            maximum: Duration::from_secs(60),
        };
        for attempt in [0, 1, 2, 3, 10, 20, 31, 32, 1000, u32::MAX] {
            let ceiling = backoff.ceiling(attempt);
            for jitter in [0.0, 0.001, 0.25, 0.5, 0.999, 1.0] {
                let delay = backoff.delay(attempt, jitter);
                assert!(delay >= ceiling / 2, "{attempt} {jitter} {delay:?}");
                assert!(delay <= ceiling, "{attempt} {jitter} {delay:?}");
                assert!(delay <= backoff.maximum);
            }
            assert_eq!(backoff.delay(attempt, 0.0), ceiling / 2);
            assert_eq!(backoff.delay(attempt, 1.0), ceiling);
        }
    }

    #[test]
    fn out_of_range_jitter_is_clamped() {
        let backoff = Backoff::RECONNECT;
        assert_eq!(backoff.delay(3, -5.0), backoff.delay(3, 0.0));
        assert_eq!(backoff.delay(3, 7.0), backoff.delay(3, 1.0));
        assert_eq!(backoff.delay(3, f64::NAN), backoff.delay(3, 0.0));
    }

    #[test]
    fn random_delays_are_within_bounds() {
        let backoff = Backoff::RECONNECT;
        for attempt in 0..12 {
            let delay = backoff.delay_with_random_jitter(attempt);
            assert!(delay >= backoff.ceiling(attempt) / 2);
            assert!(delay <= backoff.ceiling(attempt));
        }
    }
}
