//! When a failed job is tried again.
//!
//! Two layers: a step retries a transient failure a couple of times in process, within seconds
//! (backon); what still fails goes back to the queue with `next_attempt_at` set by this policy,
//! exponential with full jitter, so waits survive restarts and are shared by every instance.

use std::time::Duration;

use backon::ExponentialBuilder;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// The wait after the first failed attempt; it doubles with every attempt.
    pub base: Duration,
    /// The longest wait between two attempts.
    pub max: Duration,
    /// After this many attempts the job is dead-lettered with its last error.
    pub max_attempts: u32,
    /// In-process retries of a transient failure inside one step.
    pub in_process: ExponentialBuilder,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(5),
            max: Duration::from_secs(3600),
            max_attempts: 30,
            in_process: ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(3))
                .with_max_times(2)
                .with_jitter(),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempts + 1`, at least `floor` (a vendor's Retry-After).
    pub fn delay(&self, attempts: u32, floor: Option<Duration>, jitter: f64) -> Duration {
        let exp = attempts.saturating_sub(1).min(20);
        let ceiling = self.base.saturating_mul(1u32 << exp).min(self.max);
        // Full jitter: anywhere between half and all of the ceiling, so a burst of failures
        // (an outage) does not come back as a burst of retries.
        let wait = ceiling.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
        wait.max(floor.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_maximum_and_honours_retry_after() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, None, 1.0), Duration::from_secs(5));
        assert_eq!(p.delay(2, None, 1.0), Duration::from_secs(10));
        assert_eq!(p.delay(4, None, 1.0), Duration::from_secs(40));
        assert_eq!(p.delay(4, None, 0.0), Duration::from_secs(20));
        assert_eq!(p.delay(30, None, 1.0), Duration::from_secs(3600));
        assert_eq!(p.delay(1000, None, 1.0), Duration::from_secs(3600));
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(90)), 1.0),
            Duration::from_secs(90)
        );
    }
}
